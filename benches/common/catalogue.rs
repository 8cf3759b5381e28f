//! The generated catalogue the benches share: `n` products in 10 villages and 200 shops,
//! names and descriptions from the craft villages' vocabulary, every price agreed.

use cholang::db::Db;

pub const VILLAGES: &[&str] = &[
    "Phú Đôi",
    "Chuyên Mỹ",
    "Vân Từ",
    "Phú Túc",
    "Tri Thủy",
    "Bát Tràng",
    "Vạn Phúc",
    "Đồng Kỵ",
    "Làng Chuông",
    "Quảng Phú Cầu",
];
const THINGS: &[&str] = &[
    "Màn tuyn",
    "Màn chụp",
    "Ghế đẩu",
    "Bàn trà",
    "Khay trà",
    "Thớt",
    "Kệ sách",
    "Dao thái",
    "Kéo cắt cành",
    "Bản lề",
    "Tranh khảm trai",
    "Hộp đựng trang sức",
    "Bộ đũa",
    "Bình hoa",
    "Đĩa sơn mài",
    "Áo dài lụa",
    "Quần âu",
    "Giỏ bèo bồng",
    "Thảm cói",
    "Mũ cói",
    "Gạo nếp",
    "Gạo tám",
    "Long nhãn",
    "Mật ong",
    "Giò lụa",
    "Bát",
    "Chén",
    "Nón lá",
    "Khăn lụa",
    "Ấm chén",
];
const MATERIALS: &[&str] = &[
    "gỗ xoan",
    "gỗ mít",
    "gỗ hương",
    "inox",
    "thép",
    "tre",
    "cói",
    "lụa tơ tằm",
    "sơn mài",
    "xà cừ",
    "gốm men lam",
    "polyester",
    "đồng",
    "mây",
];
const TRAITS: &[&str] = &[
    "thủ công",
    "cao cấp",
    "loại nhỏ",
    "loại lớn",
    "màu xanh",
    "màu đỏ",
    "trắng",
    "hoa sen",
    "chạm khắc",
    "truyền thống",
    "quà tặng",
    "gia đình",
];

fn pick<'a>(list: &[&'a str], i: usize, salt: usize) -> &'a str {
    list[(i.wrapping_mul(2_654_435_761).wrapping_add(salt * 97)) % list.len()]
}

pub async fn generate(db: &Db, n: usize) {
    let mut tx = db.begin().await.unwrap();
    let now = cholang::domain::now_ms();
    for (v, name) in VILLAGES.iter().enumerate() {
        sqlx::query("INSERT INTO villages (id, slug, name, commune, district, province, created_at) VALUES ($1, $2, $3, $3, 'Phú Xuyên', 'Hà Nội', $4)")
            .bind(v as i64 + 1)
            .bind(format!("lang-{v}"))
            .bind(name.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        for (t, thing) in THINGS.iter().enumerate() {
            sqlx::query("INSERT INTO price_items (id, village_id, name, unit, price_vnd, created_at, updated_at) VALUES ($1, $2, $3, 'chiếc', $4, $5, $5)")
                .bind((v * THINGS.len() + t) as i64 + 1)
                .bind(v as i64 + 1)
                .bind(thing.to_string())
                .bind(20_000 + ((v * 31 + t * 17) % 100) as i64 * 5_000)
                .bind(now)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    for s in 0..200usize {
        sqlx::query("INSERT INTO shops (id, slug, village_id, name, phone, created_at, updated_at) VALUES ($1, $2, $3, $4, '0912000000', $5, $5)")
            .bind(s as i64 + 1)
            .bind(format!("shop-{s}"))
            .bind((s % VILLAGES.len()) as i64 + 1)
            .bind(format!("Cơ sở {} {}", pick(&["Minh", "Hạnh", "Toàn", "Hương", "Phúc", "Lợi", "Nghĩa", "Trang"], s, 1), s))
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for i in 0..n {
        let shop = i % 200;
        let village = shop % VILLAGES.len();
        let t = (i / 200) % THINGS.len();
        let name = format!(
            "{} {} {} #{i}",
            THINGS[t],
            pick(MATERIALS, i, 2),
            pick(TRAITS, i, 3)
        );
        let description = format!(
            "{} làm tại làng {}, {} {}, bền đẹp, giao hàng toàn quốc.",
            THINGS[t],
            VILLAGES[village],
            pick(MATERIALS, i, 4),
            pick(TRAITS, i, 5)
        );
        sqlx::query("INSERT INTO products (id, slug, shop_id, price_item_id, name, description, category, stock, ocop_stars, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)")
            .bind(i as i64 + 1)
            .bind(format!("p-{i}"))
            .bind(shop as i64 + 1)
            .bind((village * THINGS.len() + t) as i64 + 1)
            .bind(name)
            .bind(description)
            .bind(THINGS[t].split(' ').next().unwrap().to_string())
            .bind((i % 7) as i64)
            .bind(if i % 5 == 0 { Some(3 + (i % 3) as i64) } else { None })
            .bind(now - i as i64)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The same kind of catalogue as `cholang import` takes it (README's CSV columns): `n`
/// products in 10 villages and 200 shops; each village agrees one price per product name.
/// (The search bench imports it; the other benches that share this file do not.)
#[allow(dead_code)]
pub fn csv(n: usize) -> String {
    let mut out = String::with_capacity(n * 220 + 200);
    out.push_str("village,commune,district,shop,shop_phone,shop_email,product,description,category,price_vnd,unit,stock,ocop_stars\n");
    for i in 0..n {
        let shop = i % 200;
        let village = shop % VILLAGES.len();
        let t = (i / 200) % THINGS.len();
        out.push_str(&format!(
            "{v},{v},Phú Xuyên,Cơ sở {shop},09120{shop:05},,{thing} {m} {tr} #{i},\"{thing} làm tại làng {v}, {m2} {tr2}, bền đẹp.\",{cat},{price},chiếc,{stock},\n",
            v = VILLAGES[village],
            thing = THINGS[t],
            m = pick(MATERIALS, i, 2),
            tr = pick(TRAITS, i, 3),
            m2 = pick(MATERIALS, i, 4),
            tr2 = pick(TRAITS, i, 5),
            cat = THINGS[t].split(' ').next().unwrap(),
            price = 20_000 + ((village * 31 + t * 17) % 100) * 5_000,
            stock = i % 7,
        ));
    }
    out
}
