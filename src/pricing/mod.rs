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

pub use crate::config::BoardRules;

impl BoardRules {
    /// The smallest change from `old` the board takes.
    pub fn min_step(&self, old: i64) -> i64 {
        ((old * self.min_step_percent + 99) / 100).max(self.min_step_vnd)
    }
}

/// Whether a change to `new` passed by vote still needs the moderator: beyond ±30 % of the
/// lowest or of the highest agreed price the item had over the band's days.
pub fn beyond_band(lowest: i64, highest: i64, new: i64) -> bool {
    needs_moderator(lowest, new) || needs_moderator(highest, new)
}

/// Whether a proposal can still pass by vote: the voters who have not said no are enough.
pub fn can_still_pass(q: Quorum, voters: i64, no: i64) -> bool {
    voters - no >= q.needed(voters)
}

/// Whether the village has enough voters to decide anything by vote at all.
pub fn quorum_reachable(q: Quorum, voters: i64) -> bool {
    voters > 0 && voters >= q.needed(voters)
}

/// Why a proposal waits for a person instead of the vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitsFor {
    /// The vote passed, but the price would move beyond ±30 % of the band.
    Band,
    /// The village has too few sellers for the quorum.
    SmallVillage,
}

impl WaitsFor {
    pub fn parse(s: Option<&str>) -> Option<WaitsFor> {
        match s {
            Some("band") => Some(WaitsFor::Band),
            Some("small") => Some(WaitsFor::SmallVillage),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            WaitsFor::Band => "band",
            WaitsFor::SmallVillage => "small",
        }
    }
}

/// Who decides what the vote cannot: the village's moderator, or without one the admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    Moderator,
    Admin,
}

impl Decider {
    pub fn words(self) -> &'static str {
        match self {
            Decider::Moderator => "điều phối viên của làng",
            Decider::Admin => "quản trị Chợ Làng (làng chưa có điều phối viên)",
        }
    }
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
    /// The author took it back before it was decided.
    Withdrawn,
}

impl ProposalStatus {
    /// From the stored status, stage (`open` + `moderator` = awaiting the moderator) and
    /// decision (`rejected` + `withdrawn` = withdrawn by its author).
    pub fn parse(status: &str, stage: &str, decision: Option<&str>) -> ProposalStatus {
        match (status, stage) {
            ("approved", _) => ProposalStatus::Approved,
            ("rejected", _) if decision == Some("withdrawn") => ProposalStatus::Withdrawn,
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
            ProposalStatus::Withdrawn => "Người đề xuất đã rút lại",
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
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub village_id: i64,
    pub name: String,
    pub unit: String,
    pub price_vnd: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PriceChange {
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
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
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
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
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
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
    /// Why it waits for a person (set while `awaiting_moderator`).
    pub waits_for: Option<WaitsFor>,
    /// Who decides it when the vote cannot.
    pub decider: Decider,
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
    fn the_band_holds_over_time() {
        // 180,000 → 234,000 is +30 %; the next step to 304,200 is within 30 % of 234,000
        // but +69 % of the lowest price of the window.
        assert!(!beyond_band(180_000, 180_000, 234_000));
        assert!(beyond_band(180_000, 234_000, 304_200));
        // Back down after a rise: measured against the highest too.
        assert!(beyond_band(100_000, 200_000, 130_000));
        assert!(!beyond_band(100_000, 110_000, 120_000));
    }

    #[test]
    fn the_smallest_step() {
        let r = BoardRules::default();
        assert_eq!(r.min_step(180_000), 1_800);
        assert_eq!(r.min_step(50_000), 1_000);
        assert_eq!(r.min_step(150_001), 1_501);
        assert_eq!(BoardRules::parse_min_step("1%,1000"), Ok((1, 1000)));
        assert_eq!(BoardRules::parse_min_step("2%"), Ok((2, 0)));
        assert_eq!(BoardRules::parse_min_step("5.000"), Ok((0, 5000)));
        assert!(BoardRules::parse_min_step("abc").is_err());
        assert!(BoardRules::parse_min_step("80%").is_err());
    }

    #[test]
    fn a_proposal_the_no_votes_sink() {
        // 4 voters need 3 yes: two no votes leave 2 who could say yes.
        assert!(can_still_pass(DEFAULT, 4, 1));
        assert!(!can_still_pass(DEFAULT, 4, 2));
        // 10 voters need 6: 4 no leave 6.
        assert!(can_still_pass(DEFAULT, 10, 4));
        assert!(!can_still_pass(DEFAULT, 10, 5));
    }

    #[test]
    fn small_villages_cannot_reach_the_quorum() {
        assert!(!quorum_reachable(DEFAULT, 0));
        assert!(!quorum_reachable(DEFAULT, 1));
        assert!(!quorum_reachable(DEFAULT, 2));
        assert!(quorum_reachable(DEFAULT, 3));
        let one = Quorum {
            min_yes: 1,
            percent: 50,
        };
        assert!(quorum_reachable(one, 1));
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
