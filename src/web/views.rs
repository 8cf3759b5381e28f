//! Display-ready values for templates: prices as `180.000 ₫`, times in Hà Nội time, URLs.

use crate::catalog::{ProductCard, ProductDetail, Shop, Village};
use crate::domain::format_vn_time;
use crate::domain::money::format_vnd;
use crate::pricing::{PriceChange, PriceItem, Proposal, ProposalStatus};

pub fn stars(n: Option<i64>) -> String {
    match n {
        Some(n) => "★".repeat(n as usize),
        None => String::new(),
    }
}

pub struct CardView {
    pub url: String,
    pub name: String,
    pub price: String,
    pub unit: String,
    pub shop_name: String,
    pub shop_url: String,
    pub village_name: String,
    pub thumb_url: Option<String>,
    pub ocop: String,
    /// Stars claimed but not yet confirmed by the village's moderator.
    pub ocop_pending: bool,
    pub in_stock: bool,
    pub stock: i64,
    pub category: String,
    pub slug: String,
    pub active: bool,
    /// The name with matched words in `<mark>` (HTML, already escaped), on search pages.
    pub highlight: Option<String>,
    /// Words around the buyer's word in the description when the name has none (HTML).
    pub snippet: String,
}

impl From<&ProductCard> for CardView {
    fn from(c: &ProductCard) -> Self {
        CardView {
            url: format!("/san-pham/{}", c.slug),
            name: c.name.clone(),
            price: format_vnd(c.price_vnd),
            unit: c.unit.clone(),
            shop_name: c.shop_name.clone(),
            shop_url: format!("/shop/{}", c.shop_slug),
            village_name: c.village_name.clone(),
            thumb_url: c.thumb.as_ref().map(|t| format!("/anh/{t}")),
            ocop: stars(c.ocop_stars),
            ocop_pending: c.ocop_stars.is_some() && !c.ocop_verified,
            in_stock: c.stock > 0,
            stock: c.stock,
            category: c.category.clone(),
            slug: c.slug.clone(),
            active: c.active,
            highlight: None,
            snippet: String::new(),
        }
    }
}

pub fn cards(list: &[ProductCard]) -> Vec<CardView> {
    list.iter().map(CardView::from).collect()
}

pub struct VillageView {
    pub url: String,
    pub board_url: String,
    pub name: String,
    pub place: String,
    pub story: String,
    pub slug: String,
}

impl From<&Village> for VillageView {
    fn from(v: &Village) -> Self {
        VillageView {
            url: format!("/lang/{}", v.slug),
            board_url: format!("/lang/{}/bang-gia", v.slug),
            name: v.name.clone(),
            place: format!("xã {}, huyện {}, {}", v.commune, v.district, v.province),
            story: v.story.clone(),
            slug: v.slug.clone(),
        }
    }
}

pub struct ShopView {
    pub url: String,
    pub name: String,
    pub slug: String,
    pub phone: String,
    pub story: String,
    pub edit_url: String,
    /// "" for a shop on its village's board; otherwise why it cannot sell yet.
    pub membership_note: String,
    /// For two weeks after the village accepted the shop: that it did, and what it may do now.
    pub welcome: String,
}

impl From<&Shop> for ShopView {
    fn from(s: &Shop) -> Self {
        ShopView {
            url: format!("/shop/{}", s.slug),
            name: s.name.clone(),
            slug: s.slug.clone(),
            phone: s.phone.clone(),
            story: s.story.clone(),
            edit_url: format!("/quan-ly/cua-hang/{}", s.slug),
            membership_note: match s.membership.as_str() {
                "pending" => "Đang chờ điều phối viên của làng chấp nhận. Khi được chấp nhận, bạn có thể đăng sản phẩm và biểu quyết giá.".into(),
                "rejected" => "Điều phối viên của làng chưa chấp nhận cửa hàng này.".into(),
                _ => String::new(),
            },
            welcome: s
                .accepted_recently(crate::domain::now_ms())
                .map(|at| {
                    format!(
                        "Làng đã chấp nhận cửa hàng ngày {}. Bạn có thể đăng sản phẩm và biểu quyết giá.",
                        crate::domain::format_vn_date(at)
                    )
                })
                .unwrap_or_default(),
        }
    }
}

pub struct ItemView {
    pub id: i64,
    pub anchor: String,
    pub name: String,
    pub unit: String,
    pub price: String,
    pub updated: String,
}

impl From<&PriceItem> for ItemView {
    fn from(i: &PriceItem) -> Self {
        ItemView {
            id: i.id,
            anchor: format!("muc-{}", i.id),
            name: i.name.clone(),
            unit: i.unit.clone(),
            price: format_vnd(i.price_vnd),
            updated: format_vn_time(i.updated_at),
        }
    }
}

pub struct ChangeView {
    pub item_name: String,
    pub unit: String,
    pub old_price: String,
    pub new_price: String,
    pub source: String,
    pub actor: String,
    pub at: String,
    pub anchor: String,
}

impl From<&PriceChange> for ChangeView {
    fn from(c: &PriceChange) -> Self {
        ChangeView {
            item_name: c.item_name.clone(),
            unit: c.unit.clone(),
            old_price: c
                .old_price_vnd
                .map(format_vnd)
                .unwrap_or_else(|| "—".into()),
            new_price: format_vnd(c.new_price_vnd),
            source: c.source_label().to_string(),
            actor: c.actor.clone().unwrap_or_default(),
            at: format_vn_time(c.at),
            anchor: format!("muc-{}", c.price_item_id),
        }
    }
}

pub struct ProposalView {
    pub id: i64,
    pub item_name: String,
    pub unit: String,
    pub proposer: String,
    pub proposer_shop: String,
    pub old_price: String,
    pub new_price: String,
    pub reason: String,
    pub status: String,
    pub is_open: bool,
    pub awaiting_moderator: bool,
    /// How it was decided, for the public history ("" while open).
    pub decision: String,
    pub created: String,
    pub closes: String,
    pub yes: i64,
    pub no: i64,
    pub votes: Vec<(String, bool)>,
    /// The change in percent, signed, the Vietnamese way ("+6,7 %").
    pub change: String,
    /// Beyond ±30 % of the current price (the band the moderator watches).
    pub beyond_band: bool,
    /// Waiting for a person in a village too small for the quorum: votes are counsel.
    pub counsel_votes: bool,
    pub proposer_id: i64,
}

/// "+6,7 %", "−12,5 %": one decimal, a comma, a real minus sign.
pub fn percent_change(old: i64, new: i64) -> String {
    if old <= 0 {
        return String::new();
    }
    let tenths = ((new - old) * 1000 + old / 2 * (new - old).signum()) / old;
    let sign = if tenths > 0 {
        "+"
    } else if tenths < 0 {
        "−"
    } else {
        ""
    };
    format!("{sign}{},{} %", tenths.abs() / 10, tenths.abs() % 10)
}

impl From<&Proposal> for ProposalView {
    fn from(p: &Proposal) -> Self {
        ProposalView {
            id: p.id,
            item_name: p.item_name.clone(),
            unit: p.unit.clone(),
            proposer: p.proposer.clone(),
            proposer_shop: p.proposer_shop.clone(),
            old_price: format_vnd(p.old_price_vnd),
            new_price: format_vnd(p.new_price_vnd),
            reason: p.reason.clone(),
            status: p.status.label().to_string(),
            is_open: p.status == ProposalStatus::Open,
            awaiting_moderator: p.status == ProposalStatus::AwaitingModerator,
            change: percent_change(p.old_price_vnd, p.new_price_vnd),
            beyond_band: crate::pricing::needs_moderator(p.old_price_vnd, p.new_price_vnd),
            counsel_votes: p.waits_for == Some(crate::pricing::WaitsFor::SmallVillage),
            proposer_id: p.proposer_user_id,
            decision: match (p.status, p.decision.as_deref()) {
                (ProposalStatus::Rejected, Some("moderator")) => format!(
                    "Điều phối viên {} từ chối: {}",
                    p.decided_by.clone().unwrap_or_default(),
                    p.decision_reason.clone().unwrap_or_default()
                ),
                (ProposalStatus::Rejected, Some("expired")) => {
                    "Hết thời gian biểu quyết mà chưa đủ phiếu.".into()
                }
                (ProposalStatus::Approved, Some("moderator")) => format!(
                    "Điều phối viên {} duyệt.",
                    p.decided_by.clone().unwrap_or_default()
                ),
                (ProposalStatus::Approved, _) => "Đủ phiếu đồng ý.".into(),
                (ProposalStatus::Rejected, Some("votes")) => {
                    "Không thông qua: số người không đồng ý đã đủ để đề xuất không thể đạt đủ phiếu."
                        .into()
                }
                (ProposalStatus::Withdrawn, _) => "Người đề xuất đã rút lại.".into(),
                (ProposalStatus::AwaitingModerator, _) => match p.waits_for {
                    Some(crate::pricing::WaitsFor::SmallVillage) => format!(
                        "Làng chưa đủ người bán để tự biểu quyết, nên {} quyết định. Phiếu của người bán là ý kiến để tham khảo.",
                        p.decider.words()
                    ),
                    _ => format!(
                        "Đủ phiếu, nhưng giá mới lệch quá {}% so với giá thấp nhất hoặc cao nhất đã thống nhất gần đây, nên chờ {} duyệt.",
                        crate::pricing::MODERATOR_BAND_PERCENT,
                        p.decider.words()
                    ),
                },
                _ => String::new(),
            },
            created: format_vn_time(p.created_at),
            closes: format_vn_time(p.closes_at),
            yes: p.yes,
            no: p.no,
            votes: p
                .votes
                .iter()
                .map(|v| (format!("{} · {}", v.voter, v.shop_name), v.approve))
                .collect(),
        }
    }
}

pub struct DetailView {
    pub id: i64,
    pub card: CardView,
    pub description: String,
    pub maker: String,
    pub materials: String,
    pub made_in: String,
    pub price_item_name: String,
    pub board_url: String,
    pub photos: Vec<(String, String)>,
    pub updated: String,
    /// "giấy chứng nhận số …, năm …", when given.
    pub ocop_cert: String,
}

pub fn detail(d: &ProductDetail) -> DetailView {
    DetailView {
        id: d.card.id.0,
        card: CardView::from(&d.card),
        description: d.description.clone(),
        maker: d.maker.clone(),
        materials: d.materials.clone(),
        made_in: d.made_in.clone(),
        price_item_name: d.price_item_name.clone(),
        board_url: format!(
            "/lang/{}/bang-gia#muc-{}",
            d.card.village_slug, d.card.price_item_id
        ),
        photos: d
            .photos
            .iter()
            .map(|p| {
                (
                    format!("/anh/{}", p.file_name),
                    format!("/anh/{}", p.thumb_name),
                )
            })
            .collect(),
        updated: format_vn_time(d.updated_at),
        ocop_cert: match (&d.ocop_cert_no, d.ocop_cert_year) {
            (Some(no), Some(y)) => format!("giấy chứng nhận số {no}, năm {y}"),
            _ => String::new(),
        },
    }
}

/// One item's price history: the SVG and the same dates and prices as text.
#[derive(Clone)]
pub struct ChartView {
    pub anchor: String,
    pub name: String,
    pub unit: String,
    pub svg: String,
    /// (day, price), oldest first.
    pub points: Vec<(String, String)>,
    /// With a single price ever: one line saying so, instead of a chart.
    pub compact: String,
}

impl ChartView {
    /// The chart of one item's changes; None without any.
    pub fn of(
        item_id: i64,
        name: &str,
        unit: &str,
        changes: &[crate::pricing::PriceChange],
    ) -> Option<ChartView> {
        let mut mine: Vec<&crate::pricing::PriceChange> = changes
            .iter()
            .filter(|c| c.price_item_id == item_id)
            .collect();
        mine.sort_by_key(|c| (c.at, c.id));
        let owned: Vec<crate::pricing::PriceChange> = mine.iter().map(|c| (*c).clone()).collect();
        let mut prices: Vec<i64> = owned.iter().map(|c| c.new_price_vnd).collect();
        prices.extend(owned.first().and_then(|c| c.old_price_vnd));
        prices.sort_unstable();
        prices.dedup();
        if prices.len() < 2 {
            // One price: a line, not a flat chart.
            let first = owned.first()?;
            return Some(ChartView {
                anchor: format!("bieu-do-{item_id}"),
                name: name.to_string(),
                unit: unit.to_string(),
                svg: String::new(),
                points: Vec::new(),
                compact: format!(
                    "{} từ {}, chưa thay đổi.",
                    format_vnd(first.new_price_vnd),
                    crate::pricing::chart::day(first.at)
                ),
            });
        }
        let svg = crate::pricing::chart::svg(
            &format!("gia-{item_id}"),
            name,
            &owned,
            crate::domain::now_ms(),
        )?;
        Some(ChartView {
            anchor: format!("bieu-do-{item_id}"),
            name: name.to_string(),
            unit: unit.to_string(),
            svg,
            points: owned
                .iter()
                .map(|c| {
                    (
                        crate::pricing::chart::day(c.at),
                        format_vnd(c.new_price_vnd),
                    )
                })
                .collect(),
            compact: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::percent_change;

    #[test]
    fn percent_changes_read_the_vietnamese_way() {
        assert_eq!(percent_change(150_000, 160_000), "+6,7 %");
        assert_eq!(percent_change(120_000, 200_000), "+66,7 %");
        assert_eq!(percent_change(180_000, 234_000), "+30,0 %");
        assert_eq!(percent_change(200_000, 175_000), "−12,5 %");
        assert_eq!(percent_change(100_000, 100_000), "0,0 %");
        assert_eq!(percent_change(0, 5), "");
    }
}
