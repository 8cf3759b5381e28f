//! The community fair-price board: price items, proposals, votes, quorum and history.
//!
//! Rules in this file are pure; `store` applies them inside transactions.

pub mod chart;
pub mod store;

use serde::Serialize;

/// When a proposal passes by vote: at least `min_yes` yes votes AND strictly more than
/// `percent` % of the village's voters. Voters are people, not shops: sellers with at least
/// one active shop the village's moderator accepted, one vote each however many shops they
/// own (five shops opened by one account once carried a price alone).
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

/// A change of more than this many percent of the current price needs the moderator's
/// approval even when the vote passes.
pub const MODERATOR_BAND_PERCENT: i64 = 30;
/// Shortest reason a proposer (or a moderator rejecting) must write, in characters.
pub const MIN_REASON_CHARS: usize = 15;

/// Whether moving a price from `old` to `new` is beyond ±30 % and so needs a moderator.
pub fn needs_moderator(old: i64, new: i64) -> bool {
    (new - old).abs() * 100 > old * MODERATOR_BAND_PERCENT
}

/// A written reason: trimmed, at least [`MIN_REASON_CHARS`] characters, at most 500.
pub fn parse_reason(s: &str, what: &str) -> Result<String, String> {
    let r = crate::domain::text::clean_line(s, what, 500)?;
    if r.chars().count() < MIN_REASON_CHARS {
        return Err(format!(
            "{} cần ít nhất {MIN_REASON_CHARS} ký tự để cả làng hiểu vì sao",
            capitalize(what)
        ));
    }
    Ok(r)
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    Open,
    /// The vote passed but the change is beyond ±30 %: the moderator decides.
    AwaitingModerator,
    Approved,
    Rejected,
}

impl ProposalStatus {
    /// From the stored status and stage (`open` + `moderator` = awaiting the moderator).
    pub fn parse(status: &str, stage: &str) -> ProposalStatus {
        match (status, stage) {
            ("approved", _) => ProposalStatus::Approved,
            ("rejected", _) => ProposalStatus::Rejected,
            (_, "moderator") => ProposalStatus::AwaitingModerator,
            _ => ProposalStatus::Open,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ProposalStatus::Open => "Đang biểu quyết",
            ProposalStatus::AwaitingModerator => "Chờ điều phối viên",
            ProposalStatus::Approved => "Đã thông qua",
            ProposalStatus::Rejected => "Không thông qua",
        }
    }
    /// Still to be decided (voting, or waiting for the moderator).
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            ProposalStatus::Open | ProposalStatus::AwaitingModerator
        )
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriceItem {
    pub id: i64,
    pub village_id: i64,
    pub name: String,
    pub unit: String,
    pub price_vnd: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Vote {
    pub shop_id: i64,
    pub shop_name: String,
    pub voter: String,
    pub approve: bool,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    /// The moderator's written reason when they rejected it (public).
    pub decision_reason: Option<String>,
    pub decided_by: Option<String>,
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
    fn thirty_percent_band() {
        assert!(!needs_moderator(100_000, 130_000));
        assert!(needs_moderator(100_000, 130_001));
        assert!(!needs_moderator(100_000, 70_000));
        assert!(needs_moderator(100_000, 69_999));
        assert!(needs_moderator(1_850_000, 1_000));
    }

    #[test]
    fn reasons_have_a_minimum_length() {
        assert!(parse_reason("rẻ", "lý do").is_err());
        assert!(parse_reason("               ", "lý do").is_err());
        assert_eq!(
            parse_reason("  Giá vải tuyn tăng 10 %  ", "lý do").unwrap(),
            "Giá vải tuyn tăng 10 %"
        );
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
