//! The village price board page: agreed prices, open proposals with votes, history.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use serde::Deserialize;

use super::session::{CurrentUser, verify_csrf};
use super::views::{ChangeView, ItemView, ProposalView, VillageView};
use super::{CsrfSeed, Layout, MaybeUser, PageResult, render, see_other};
use crate::accounts::User;
use crate::catalog::store as catalog;
use crate::error::{AppError, FieldErrors};
use crate::pricing::store as pricing;
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lang/{slug}/bang-gia", get(board))
        .route("/lang/{slug}/bang-gia/de-xuat", post(propose))
        .route("/lang/{slug}/bang-gia/mat-hang", post(add_item))
        .route("/de-xuat/{id}/bieu-quyet", post(vote))
        .route("/de-xuat/{id}/duyet", post(approve))
        .route("/de-xuat/{id}/tu-choi", post(reject))
        .route("/de-xuat/{id}/rut-lai", post(withdraw))
        .route("/cua-hang/{slug}/gia-nhap", post(decide_membership))
}

#[derive(Template)]
#[template(path = "board.html")]
struct BoardPage {
    layout: Layout,
    village: VillageView,
    items: Vec<ItemView>,
    proposals: Vec<ProposalView>,
    history: Vec<ChangeView>,
    /// Each item's price over time (items with at least one change).
    charts: Vec<super::views::ChartView>,
    active_shops: i64,
    needed: i64,
    /// Whether the village has enough sellers to decide by vote.
    reachable: bool,
    /// Who decides what the vote cannot, in words.
    decider: &'static str,
    band_days: i64,
    /// The smallest change taken, in words ("1% và ít nhất 1.000 ₫").
    min_step: String,
    /// The signed-in user's id (their own proposals can be withdrawn).
    me: i64,
    proposal_days: i64,
    can_vote: bool,
    can_moderate: bool,
    /// Shops asking to join the board (shown to the moderator).
    join_requests: Vec<catalog::JoinRequest>,
    errors: FieldErrors,
    form_item: String,
    form_price: String,
    form_reason: String,
}

impl BoardPage {
    fn err(&self, field: &str) -> String {
        self.errors.get(field).unwrap_or("").to_string()
    }
    fn decide_err(&self, id: &i64) -> String {
        self.err(&format!("decide_{id}"))
    }
    fn selected(&self, id: &i64) -> bool {
        self.form_item == id.to_string()
    }
}

pub fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "proposed" => "Đã gửi đề xuất giá. Các cửa hàng trong làng có thể biểu quyết.",
        "voted" => "Đã ghi nhận phiếu của bạn.",
        "approved" => "Đề xuất đã được duyệt; giá mới áp dụng cho mọi sản phẩm của mặt hàng.",
        "rejected" => "Đã từ chối đề xuất; lý do hiện trong lịch sử công khai.",
        "withdrawn" => "Đã rút lại đề xuất. Mặt hàng có thể nhận đề xuất mới.",
        "shop-accepted" => "Đã chấp nhận cửa hàng vào bảng giá của làng.",
        "shop-rejected" => "Đã từ chối cửa hàng.",
        "password-changed" => "Đã đổi mật khẩu; các phiên đăng nhập khác đã kết thúc.",
        "phone-proven" => "Đã xác nhận số điện thoại. Bây giờ bạn có thể mở cửa hàng.",
        "email-confirmed" => "Đã xác nhận email nhận thông báo của cửa hàng.",
        "item-added" => "Đã thêm mặt hàng vào bảng giá.",
        "product-created" => "Đã đăng sản phẩm.",
        "product-saved" => "Đã lưu sản phẩm.",
        "photo-added" => "Đã thêm ảnh.",
        "photo-removed" => "Đã xóa ảnh.",
        "photo-moved" => "Đã đổi thứ tự ảnh; ảnh đầu tiên là ảnh chính của sản phẩm.",
        "batch-created" => "Đã ghi lô sản xuất. Hãy in tem truy xuất để dán lên hàng.",
        "batch-saved" => "Đã lưu lô sản xuất.",
        "labels-printed" => {
            "Đã ghi nhận tem đã in. Từ nay sửa thông tin lô cần ghi lý do và thành phiên bản mới."
        }
        "ocop-confirmed" => {
            "Đã xác nhận hạng OCOP; sản phẩm hiện là sản phẩm OCOP và tìm được theo hạng."
        }
        "ocop-rejected" => "Đã gỡ hạng OCOP khai sai của sản phẩm.",
        "item-accepted" => "Đã đồng ý; sản phẩm dùng giá của mặt hàng và đã hiện lên chợ.",
        "item-refused" => "Đã từ chối; người bán thấy lý do trong trang sản phẩm của mình.",
        "product-waits-item" => {
            "Đã lưu sản phẩm. Tên sản phẩm khác tên mặt hàng trên bảng giá, nên sản phẩm chờ điều phối viên đồng ý rồi mới hiện lên chợ."
        }
        "batch-revised" => {
            "Tem của lô đã in nên chỉnh sửa được ghi thành một phiên bản mới; trang nguồn gốc hiện cả lịch sử."
        }
        "batch-current" => "Đã chọn lô đang bán; đơn hàng mới sẽ ghi lô này.",
        "shop-created" => {
            "Đã tạo cửa hàng. Điều phối viên của làng sẽ xem xét; khi được chấp nhận, bạn có thể đăng sản phẩm và biểu quyết giá."
        }
        "shop-saved" => "Đã lưu thông tin cửa hàng.",
        "shipping-saved" => "Đã lưu cách giao hàng. Người mua sẽ thấy phí giao khi đặt hàng.",
        "welcome" => "Chào mừng bạn đến Chợ Làng! Hãy tạo cửa hàng đầu tiên.",
        "test-sent" => {
            "Đã xếp thông báo thử vào hàng gửi; trạng thái hiện ở mục “Thông báo gần đây”."
        }
        _ => return None,
    })
}

#[derive(Deserialize, Default)]
struct Ok_ {
    #[serde(default)]
    ok: String,
}

struct Draft {
    errors: FieldErrors,
    item: String,
    price: String,
    reason: String,
}

async fn board_page(
    st: &AppState,
    seed: &CsrfSeed,
    user: &Option<User>,
    slug: &str,
    notice_code: &str,
    draft: Draft,
) -> PageResult {
    let v = catalog::village_by_slug(&st.db, slug).await?;
    let items = pricing::items_of_village(&st.db, v.id.0).await?;
    let proposals = pricing::proposals_of_village(&st.db, v.id.0).await?;
    let history = pricing::history_of_village(&st.db, v.id.0).await?;
    let (active_shops, needed) = pricing::quorum_status(&st.db, &v).await?;
    let quorum = crate::pricing::Quorum {
        min_yes: v.quorum_min_yes,
        percent: v.quorum_percent,
    };
    let rules = st.config.board;
    let decider = pricing::decider_of(&st.db, v.id.0).await?.words();
    let (can_vote, can_moderate) = match user {
        Some(u) => {
            let shops = catalog::shops_of_owner(&st.db, u).await?;
            (
                shops
                    .iter()
                    .any(|s| s.village_id == v.id && s.active && s.membership == "accepted"),
                crate::accounts::store::can_moderate(&st.db, u, v.id.0).await?,
            )
        }
        None => (false, false),
    };
    render(BoardPage {
        layout: Layout::new(st, seed, user, format!("Bảng giá cộng đồng — {}", v.name))
            .with_notice(notice(notice_code)),
        village: VillageView::from(&v),
        items: items.iter().map(ItemView::from).collect(),
        proposals: proposals.iter().map(ProposalView::from).collect(),
        charts: items
            .iter()
            .filter_map(|i| super::views::ChartView::of(i.id, &i.name, &i.unit, &history))
            .collect(),
        history: history.iter().map(ChangeView::from).collect(),
        active_shops,
        needed,
        reachable: crate::pricing::quorum_reachable(quorum, active_shops),
        decider,
        band_days: rules.band_days,
        min_step: match (rules.min_step_percent, rules.min_step_vnd) {
            (0, a) => crate::domain::money::format_vnd(a),
            (p, 0) => format!("{p}%"),
            (p, a) => format!("{p}% và ít nhất {}", crate::domain::money::format_vnd(a)),
        },
        me: user.as_ref().map(|u| u.id.0).unwrap_or(0),
        proposal_days: v.proposal_days,
        can_vote,
        can_moderate,
        join_requests: if can_moderate {
            catalog::join_requests(&st.db, v.id).await?
        } else {
            Vec::new()
        },
        errors: draft.errors,
        form_item: draft.item,
        form_price: draft.price,
        form_reason: draft.reason,
    })
}

async fn board(
    State(st): State<AppState>,
    seed: CsrfSeed,
    MaybeUser(user): MaybeUser,
    Path(slug): Path<String>,
    Query(q): Query<Ok_>,
) -> PageResult {
    let draft = Draft {
        errors: FieldErrors::new(),
        item: String::new(),
        price: String::new(),
        reason: String::new(),
    };
    board_page(&st, &seed, &user, &slug, &q.ok, draft).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ProposeForm {
    csrf: String,
    price_item_id: String,
    price_vnd: String,
    reason: String,
}

async fn propose(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<ProposeForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let v = catalog::village_by_slug(&st.db, &slug).await?;
    let item_id: i64 = f.price_item_id.parse().unwrap_or(-1);
    let result = match pricing::item_by_id(&st.db, item_id).await {
        Ok(item) if item.village_id == v.id.0 => {
            pricing::propose(
                &st.db,
                &st.config.board,
                &user,
                item.id,
                &f.price_vnd,
                &f.reason,
            )
            .await
        }
        Ok(_) | Err(AppError::NotFound) => Err(AppError::field(
            "price_item_id",
            "chọn một mặt hàng trên bảng giá của làng",
        )),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => see_other(&format!("/lang/{slug}/bang-gia?ok=proposed")),
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let status = e.status();
            let errors = match e {
                AppError::Validation(fe) => fe,
                other => {
                    let mut fe = FieldErrors::new();
                    fe.add("price_item_id", other.to_string());
                    fe
                }
            };
            let draft = Draft {
                errors,
                item: f.price_item_id,
                price: f.price_vnd,
                reason: f.reason,
            };
            let mut resp = board_page(&st, &seed, &Some(user), &slug, "", draft).await?;
            *resp.status_mut() = status;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct VoteForm {
    csrf: String,
    approve: String,
}

async fn vote(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<VoteForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let approve = match f.approve.as_str() {
        "1" => true,
        "0" => false,
        _ => return Err(AppError::field("approve", "chọn đồng ý hoặc không đồng ý").into()),
    };
    let p = pricing::vote(&st.db, &st.config.board, &user, id, approve).await?;
    let v = catalog::village_by_id(&st.db, crate::catalog::VillageId(p.village_id)).await?;
    see_other(&format!("/lang/{}/bang-gia?ok=voted", v.slug))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DecideForm {
    csrf: String,
    /// "1" when the moderator ticked the confirmation box.
    confirm: String,
    reason: String,
    decision: String,
}

/// The moderator's decision on the board page; a refusal (no confirmation, a short reason)
/// comes back as the board with the message next to the proposal.
async fn decided(
    st: &AppState,
    seed: &CsrfSeed,
    user: User,
    id: i64,
    result: Result<crate::pricing::Proposal, AppError>,
    ok: &str,
) -> PageResult {
    match result {
        Ok(p) => {
            let v = catalog::village_by_id(&st.db, crate::catalog::VillageId(p.village_id)).await?;
            see_other(&format!("/lang/{}/bang-gia?ok={ok}#de-xuat-{id}", v.slug))
        }
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let p = pricing::proposal_by_id(&st.db, id).await?;
            let v = catalog::village_by_id(&st.db, crate::catalog::VillageId(p.village_id)).await?;
            let status = e.status();
            let mut errors = FieldErrors::new();
            let msg = match e {
                AppError::Validation(fe) => fe.0.into_values().next().unwrap_or_default(),
                other => other.to_string(),
            };
            errors.add(&format!("decide_{id}"), msg);
            let draft = Draft {
                errors,
                item: String::new(),
                price: String::new(),
                reason: String::new(),
            };
            let mut resp = board_page(st, seed, &Some(user), &v.slug, "", draft).await?;
            *resp.status_mut() = status;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}

async fn approve(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<DecideForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let r = pricing::approve_by_moderator(&st.db, &user, id, f.confirm == "1").await;
    decided(&st, &seed, user, id, r, "approved").await
}

async fn reject(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<DecideForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let r = pricing::reject_by_moderator(&st.db, &user, id, &f.reason).await;
    decided(&st, &seed, user, id, r, "rejected").await
}

/// The author takes back their open proposal.
async fn withdraw(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<DecideForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let r = pricing::withdraw(&st.db, &user, id).await;
    decided(&st, &seed, user, id, r, "withdrawn").await
}

/// The moderator accepts or refuses a shop asking to join the village's board.
async fn decide_membership(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<DecideForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let shop = catalog::shop_by_slug(&st.db, &slug).await?;
    let accept = f.decision == "accept";
    catalog::decide_membership(&st.db, &user, &shop, accept, &f.reason).await?;
    let v = catalog::village_by_id(&st.db, shop.village_id).await?;
    let ok = if accept {
        "shop-accepted"
    } else {
        "shop-rejected"
    };
    see_other(&format!("/lang/{}/bang-gia?ok={ok}", v.slug))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ItemForm {
    csrf: String,
    name: String,
    unit: String,
    price_vnd: String,
}

async fn add_item(
    State(st): State<AppState>,
    seed: CsrfSeed,
    CurrentUser(user): CurrentUser,
    Path(slug): Path<String>,
    Form(f): Form<ItemForm>,
) -> PageResult {
    verify_csrf(&st, &seed, &f.csrf)?;
    let v = catalog::village_by_slug(&st.db, &slug).await?;
    match pricing::create_item(&st.db, &user, &v, &f.name, &f.unit, &f.price_vnd).await {
        Ok(_) => see_other(&format!("/lang/{slug}/bang-gia?ok=item-added")),
        Err(e @ (AppError::Validation(_) | AppError::Conflict(_))) => {
            let status = e.status();
            let errors = match e {
                AppError::Validation(fe) => {
                    let mut out = FieldErrors::new();
                    for (k, m) in fe.0 {
                        out.add(&format!("item_{k}"), m);
                    }
                    out
                }
                other => {
                    let mut fe = FieldErrors::new();
                    fe.add("item_name", other.to_string());
                    fe
                }
            };
            let draft = Draft {
                errors,
                item: String::new(),
                price: String::new(),
                reason: String::new(),
            };
            let mut resp = board_page(&st, &seed, &Some(user), &slug, "", draft).await?;
            *resp.status_mut() = status;
            Ok(resp)
        }
        Err(e) => Err(e.into()),
    }
}
