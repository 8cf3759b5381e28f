//! `cholang serve --demo`: a live-looking market for newcomers, loaded only into an empty
//! database. The catalogue goes through the real importer; accounts and a proposal through
//! the real domain functions.

use crate::accounts::store::{add_moderator, create_user, find_by_login};
use crate::accounts::{Login, NewUser, Role};
use crate::db::Db;
use crate::domain::PhoneVn;
use crate::error::Result;

pub const DEMO_CSV: &str = include_str!("../../demo/demo.csv");
pub const DEMO_PASSWORD: &str = "cholang-demo";

const STORIES: &[(&str, &str)] = &[
    (
        "Phú Đôi",
        "Làng nghề màn tuyn ở xã Đại Thắng, huyện Phú Xuyên. Khoảng 500 hộ dệt, may màn và làm đồ gỗ, cơ khí nhỏ; giá bán do cả làng cùng thống nhất.",
    ),
    (
        "Chuyên Mỹ",
        "Cái nôi của nghề khảm trai Việt Nam, nổi tiếng với tranh và đồ sơn mài khảm xà cừ cắt tay.",
    ),
    (
        "Vân Từ",
        "Làng may đo truyền thống, nhiều thế hệ thợ may com lê, áo dài cho Hà Nội.",
    ),
    (
        "Phú Túc",
        "Làng đan bèo bồng và cói, hàng thủ công xuất khẩu từ nguyên liệu đồng quê.",
    ),
    (
        "Tri Thủy",
        "Vùng nông sản ven sông Hồng: nếp cái hoa vàng, nhãn lồng, mật ong hoa nhãn.",
    ),
];

/// (shop, seller phone, seller name)
const SELLERS: &[(&str, &str, &str)] = &[
    ("Màn tuyn Bà Hạnh", "0912000101", "Nguyễn Thị Hạnh"),
    ("Màn Phú Đôi Thanh Hương", "0912000102", "Trần Thanh Hương"),
    ("Đồ gỗ Minh Đức", "0912000103", "Lê Minh Đức"),
    ("Cơ khí Văn Toàn", "0912000104", "Phạm Văn Toàn"),
    ("Khảm trai Trọng Nghĩa", "0912000201", "Đỗ Trọng Nghĩa"),
    ("Sơn mài Hữu Phúc", "0912000202", "Vũ Hữu Phúc"),
    ("May đo Quang Huy", "0912000301", "Bùi Quang Huy"),
    ("Bèo bồng Thu Trang", "0912000401", "Hoàng Thu Trang"),
    ("HTX Nông sản Tri Thủy", "0912000501", "Ngô Văn Thủy"),
    ("Ong mật Nguyễn Lợi", "0912000502", "Nguyễn Văn Lợi"),
];

pub const MODERATOR_PHONE: &str = "0912000100";
pub const ADMIN_EMAIL: &str = "admin@cholang.local";

/// Load the demo when the database has no villages yet. Returns whether it loaded.
pub async fn load_if_empty(db: &Db) -> anyhow::Result<bool> {
    let (villages, _, _) = crate::catalog::store::counts(db).await?;
    if villages > 0 {
        return Ok(false);
    }
    crate::import::import_bytes(db, DEMO_CSV.as_bytes(), "Hà Nội")
        .await
        .map_err(|e| anyhow::anyhow!("demo import failed: {e}"))?;
    for (name, story) in STORIES {
        sqlx::query("UPDATE villages SET story = $1 WHERE name = $2")
            .bind(story.to_string())
            .bind(name.to_string())
            .execute(&db.pool)
            .await?;
    }
    let mut sellers = Vec::new();
    for (shop, phone, name) in SELLERS {
        let user = seller(db, phone, name, Role::Seller).await?;
        sqlx::query("UPDATE shops SET owner_id = $1 WHERE name = $2")
            .bind(user.id.0)
            .bind(shop.to_string())
            .execute(&db.pool)
            .await?;
        sellers.push(user);
    }
    let moderator = seller(db, MODERATOR_PHONE, "Trưởng thôn Phú Đôi", Role::Moderator).await?;
    let phu_doi = crate::catalog::store::village_by_slug(db, "phu-doi").await?;
    add_moderator(db, phu_doi.id.0, moderator.id).await?;
    let admin = NewUser::parse(ADMIN_EMAIL, "Quản trị Chợ Làng", DEMO_PASSWORD, Role::Admin)?;
    create_user(db, admin).await?;

    // One open proposal on the Phú Đôi board, with a first vote, so the board is alive.
    let items = crate::pricing::store::items_of_village(db, phu_doi.id.0).await?;
    if let Some(item) = items.iter().find(|i| i.name == "Màn tuyn 1m6 x 2m") {
        let rules = crate::pricing::BoardRules::default();
        let p = crate::pricing::store::propose(
            db,
            &rules,
            &sellers[0],
            item.id,
            "160000",
            "Giá sợi polyester tăng khoảng 8% từ tháng trước",
        )
        .await?;
        crate::pricing::store::vote(db, &rules, &sellers[0], p.id, true).await?;
        crate::pricing::store::vote(db, &rules, &sellers[1], p.id, true).await?;
    }
    Ok(true)
}

/// The demo's digital-team member (youth union), helping two Phú Đôi households.
pub const HELPER_PHONE: &str = "0912000109";

/// Phú Đôi's community digital team: a youth-union member named by the village head, who
/// brought two households online (their consent codes typed in) and has done a few things
/// for them, which their owners see on their dashboards.
pub async fn digital_team(db: &Db) -> anyhow::Result<()> {
    let helper = seller(db, HELPER_PHONE, "Đoàn viên Nguyễn Văn Khánh", Role::Seller).await?;
    let phu_doi = crate::catalog::store::village_by_slug(db, "phu-doi").await?;
    let head: i64 = sqlx::query_scalar("SELECT id FROM users WHERE phone = $1")
        .bind(MODERATOR_PHONE)
        .fetch_one(&db.pool)
        .await?;
    let now = crate::domain::now_ms();
    sqlx::query(
        "INSERT INTO village_helpers (village_id, user_id, named_by, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (village_id, user_id) DO NOTHING",
    )
    .bind(phu_doi.id.0)
    .bind(helper.id.0)
    .bind(head)
    .bind(now - 20 * 86_400_000)
    .execute(&db.pool)
    .await?;
    for (slug, days, actions) in [
        (
            "man-phu-doi-thanh-huong",
            14,
            &[
                "mở cửa hàng cho hộ (hộ đã đồng ý bằng mã gửi tới điện thoại)",
                "thêm ảnh cho “Màn tuyn 2 cửa 1m8 x 2m”",
            ][..],
        ),
        (
            "co-khi-van-toan",
            9,
            &[
                "mở cửa hàng cho hộ (hộ đã đồng ý bằng mã gửi tới điện thoại)",
                "sửa sản phẩm: số lượng còn",
            ][..],
        ),
    ] {
        let Ok(shop) = crate::catalog::store::shop_by_slug(db, slug).await else {
            continue;
        };
        let at = now - days * 86_400_000;
        let owner_name: String = sqlx::query_scalar(
            "SELECT COALESCE(u.display_name, s.name) FROM shops s LEFT JOIN users u ON u.id = s.owner_id WHERE s.id = $1",
        )
        .bind(shop.id.0)
        .fetch_one(&db.pool)
        .await?;
        sqlx::query(
            "INSERT INTO households (village_id, helper_id, name, phone, shop_name, user_id, shop_id, confirmed_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(phu_doi.id.0)
        .bind(helper.id.0)
        .bind(owner_name)
        .bind(shop.phone.as_str().to_string())
        .bind(shop.name.clone())
        .bind(shop.owner_id)
        .bind(shop.id.0)
        .bind(at)
        .execute(&db.pool)
        .await?;
        sqlx::query(
            "INSERT INTO shop_helpers (shop_id, user_id, granted_at) VALUES ($1, $2, $3)
             ON CONFLICT (shop_id, user_id) DO NOTHING",
        )
        .bind(shop.id.0)
        .bind(helper.id.0)
        .bind(at)
        .execute(&db.pool)
        .await?;
        for (i, a) in actions.iter().enumerate() {
            sqlx::query(
                "INSERT INTO helper_actions (shop_id, helper_id, action, at) VALUES ($1, $2, $3, $4)",
            )
            .bind(shop.id.0)
            .bind(helper.id.0)
            .bind(a.to_string())
            .bind(at + i as i64 * 3_600_000)
            .execute(&db.pool)
            .await?;
        }
    }
    Ok(())
}

/// Bà Hương lists a folding frame net at the price of the village's frame net: its name is
/// not the item's, so it waits, unlisted, in the moderator's inbox.
pub async fn item_request(db: &Db) -> anyhow::Result<()> {
    let shop = crate::catalog::store::shop_by_slug(db, "man-phu-doi-thanh-huong").await?;
    let item: i64 = sqlx::query_scalar(
        "SELECT id FROM price_items WHERE name = 'Màn khung inox chống muỗi 1m8'",
    )
    .fetch_one(&db.pool)
    .await?;
    let input = crate::catalog::ProductInput {
        name: "Màn khung gấp gọn 1m8".into(),
        description: "Khung inox gấp được, cất gọn trong túi vải; kèm màn tuyn trắng.".into(),
        category: "Màn tuyn".into(),
        stock: "10".into(),
        price_item_id: item.to_string(),
        ..Default::default()
    };
    let fields = input.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
    crate::catalog::store::create_product(db, &shop, &fields).await?;
    Ok(())
}

async fn seller(db: &Db, phone: &str, name: &str, role: Role) -> Result<crate::accounts::User> {
    let login = Login::Phone(PhoneVn::parse(phone).map_err(|e| anyhow::anyhow!(e))?);
    if let Some(u) = find_by_login(db, &login).await? {
        return Ok(u);
    }
    // The demo's people count as having proven their phones.
    let mut new = NewUser::parse(phone, name, DEMO_PASSWORD, role)?;
    new.phone_proven = true;
    create_user(db, new).await
}
