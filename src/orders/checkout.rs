//! What a buyer sends at checkout, validated at the edge. Prices are never taken from the
//! client: only product references and quantities.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::domain::text::{clean_line, clean_text};
use crate::domain::{Email, PhoneVn};
use crate::error::{AppError, FieldErrors};
use crate::shipping::addresses::{Address, RawAddress};

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Vietqr,
    Payos,
    Stripe,
}

impl Method {
    pub fn parse(s: &str) -> Option<Method> {
        match s {
            "" | "vietqr" => Some(Method::Vietqr),
            "payos" => Some(Method::Payos),
            "stripe" => Some(Method::Stripe),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Vietqr => "vietqr",
            Method::Payos => "payos",
            Method::Stripe => "stripe",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProductRef {
    Id(i64),
    Slug(String),
}

/// One line of a checkout: a product by id or slug, and how many.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawItem {
    #[schema(schema_with = crate::domain::text_or_number)]
    pub product_id: Option<serde_json::Value>,
    pub product_slug: Option<String>,
    #[schema(schema_with = crate::domain::text_or_number)]
    pub quantity: Option<serde_json::Value>,
}

/// Who pays and where the goods go: a province and a ward from the lists
/// (`GET /api/v1/addresses/provinces`) with the street, or an address typed as one text
/// (accepted as typed; a shop that ships at a fee needs the lists).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawBuyer {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    #[schema(example = "01")]
    pub province_code: String,
    #[serde(default)]
    #[schema(example = "10273")]
    pub ward_code: String,
    #[serde(default)]
    #[schema(example = "Số 5, thôn Phú Đôi")]
    pub street: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Buyer {
    pub name: String,
    pub phone: PhoneVn,
    /// The address as one line: built from the lists' names, or as typed.
    pub address: String,
    /// The address from the lists, when it was chosen there.
    pub place: Option<Address>,
    pub email: Option<Email>,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutRequest {
    /// Merged by product, in the order first seen.
    pub items: Vec<(ProductRef, i64)>,
    pub buyer: Buyer,
    pub method: Method,
    /// The way to ship chosen per shop (shop slug → option id of its quote).
    pub shipping: BTreeMap<String, String>,
}

fn quantity(v: &Option<serde_json::Value>) -> Result<i64, String> {
    let n = match v {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(q) if (1..=MAX_QUANTITY).contains(&q) => Ok(q),
        _ => Err(format!("số lượng là số nguyên từ 1 đến {MAX_QUANTITY}")),
    }
}

/// What the cart may hold of a product: a whole number, at least 1 when adding, no more than
/// the stock left (counting what is already in the cart) and no more than a checkout takes
/// (`MAX_QUANTITY`, the bound `validate` holds the API to). Checkout still re-checks the
/// stock with conditional updates.
pub fn check_quantity(
    raw: &str,
    adding: bool,
    in_cart: i64,
    stock: i64,
    unit: &str,
) -> Result<i64, String> {
    let q: i64 = raw
        .trim()
        .parse()
        .map_err(|_| "Số lượng phải là một số nguyên".to_string())?;
    if q < 0 || (adding && q == 0) {
        return Err("Số lượng ít nhất là 1".into());
    }
    let wanted = if adding { in_cart + q } else { q };
    if wanted > stock {
        return Err(if adding && in_cart > 0 {
            format!("Chỉ còn {stock} {unit}; giỏ hàng đã có {in_cart} {unit}")
        } else {
            format!("Chỉ còn {stock} {unit}")
        });
    }
    if wanted > MAX_QUANTITY {
        return Err(format!("Mỗi lần đặt tối đa {} {unit}", MAX_QUANTITY));
    }
    Ok(wanted)
}

pub fn validate_buyer(b: &RawBuyer, e: &mut FieldErrors, prefix: &str) -> Option<Buyer> {
    let f = |n: &str| format!("{prefix}{n}");
    let name = e.check(&f("name"), clean_line(&b.name, "họ tên", 80));
    let phone = e.check(&f("phone"), PhoneVn::parse(&b.phone));
    let raw_place = RawAddress {
        province_code: b.province_code.clone(),
        ward_code: b.ward_code.clone(),
        street: b.street.clone(),
    };
    let (place, address) = if !raw_place.province_code.trim().is_empty()
        || !raw_place.ward_code.trim().is_empty()
        || !raw_place.street.trim().is_empty()
    {
        match Address::parse(&raw_place, e, prefix) {
            Some(p) => {
                let line = p.line();
                (Some(Some(p)), Some(line))
            }
            None => (None, None),
        }
    } else {
        let address = e.check(
            &f("address"),
            clean_line(&b.address, "địa chỉ nhận hàng", 300),
        );
        if let Some(a) = &address
            && a.chars().count() < 5
        {
            e.add(&f("address"), "địa chỉ nhận hàng quá ngắn");
        }
        (Some(None), address)
    };
    let email = match b.email.as_deref().map(str::trim) {
        None | Some("") => Some(None),
        Some(s) => e.check(&f("email"), Email::parse(s).map(Some)),
    };
    let note = e.check(
        &f("note"),
        clean_text(b.note.as_deref().unwrap_or(""), "ghi chú", 500),
    );
    Some(Buyer {
        name: name?,
        phone: phone?,
        address: address?,
        place: place?,
        email: email?,
        note: note?,
    })
}

/// The cart's lines merged by product; problems named `items[2].quantity`.
fn lines(items: &[RawItem], e: &mut FieldErrors) -> Vec<(ProductRef, i64)> {
    if items.is_empty() {
        e.add("items", "giỏ hàng đang trống");
    }
    if items.len() > MAX_LINES {
        e.add("items", format!("tối đa {MAX_LINES} sản phẩm mỗi đơn"));
    }
    let mut merged: Vec<(ProductRef, i64)> = Vec::new();
    for (i, it) in items.iter().enumerate().take(MAX_LINES) {
        let product = match (&it.product_id, &it.product_slug) {
            (Some(v), _) if v.as_i64().is_some() => Some(ProductRef::Id(v.as_i64().unwrap())),
            (Some(serde_json::Value::String(s)), _) if s.trim().parse::<i64>().is_ok() => {
                Some(ProductRef::Id(s.trim().parse().unwrap()))
            }
            (None, Some(slug)) if !slug.trim().is_empty() => {
                Some(ProductRef::Slug(slug.trim().to_string()))
            }
            _ => {
                e.add(
                    &format!("items[{i}].product_id"),
                    "cần product_id hoặc product_slug",
                );
                None
            }
        };
        let q = e.check(&format!("items[{i}].quantity"), quantity(&it.quantity));
        if let (Some(p), Some(q)) = (product, q) {
            match merged.iter_mut().find(|(r, _)| *r == p) {
                Some((_, total)) => *total = (*total + q).min(MAX_QUANTITY),
                None => merged.push((p, q)),
            }
        }
    }
    merged
}

/// What a quote needs: the cart's lines and an address from the lists.
pub fn validate_quote(
    items: &[RawItem],
    to: &RawAddress,
) -> Result<(Vec<(ProductRef, i64)>, Address), AppError> {
    let mut e = FieldErrors::new();
    let merged = lines(items, &mut e);
    let to = Address::parse(to, &mut e, "address.");
    e.into_result()?;
    Ok((merged, to.expect("checked")))
}

/// Validate a whole checkout; every problem is named (`items[2].quantity`, `buyer.phone`).
pub fn validate(
    items: &[RawItem],
    buyer: &RawBuyer,
    method: &str,
    shipping: &BTreeMap<String, String>,
) -> Result<CheckoutRequest, AppError> {
    let mut e = FieldErrors::new();
    let merged = lines(items, &mut e);
    let buyer = validate_buyer(buyer, &mut e, "buyer.");
    let method = Method::parse(method);
    if method.is_none() {
        e.add("method", "phương thức là vietqr, payos hoặc stripe");
    }
    e.into_result()?;
    Ok(CheckoutRequest {
        items: merged,
        buyer: buyer.expect("checked"),
        method: method.expect("checked"),
        shipping: shipping
            .iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn buyer() -> RawBuyer {
        RawBuyer {
            name: "Chị Lan".into(),
            phone: "0912 345 678".into(),
            address: "Số 5, thôn Phú Đôi, Đại Thắng, Phú Xuyên".into(),
            email: None,
            note: None,
            ..Default::default()
        }
    }

    #[test]
    fn merges_lines_and_ignores_nothing_else() {
        let items = vec![
            RawItem {
                product_id: Some(json!(7)),
                quantity: Some(json!(2)),
                ..Default::default()
            },
            RawItem {
                product_slug: Some("ghe-dau".into()),
                quantity: Some(json!("1")),
                ..Default::default()
            },
            RawItem {
                product_id: Some(json!("7")),
                quantity: Some(json!(3)),
                ..Default::default()
            },
        ];
        let r = validate(&items, &buyer(), "", &BTreeMap::new()).unwrap();
        assert_eq!(
            r.items,
            vec![
                (ProductRef::Id(7), 5),
                (ProductRef::Slug("ghe-dau".into()), 1)
            ]
        );
        assert_eq!(r.method, Method::Vietqr);
        assert_eq!(r.buyer.phone.as_str(), "0912345678");
    }

    #[test]
    fn names_every_bad_field() {
        let items = vec![
            RawItem {
                product_id: Some(json!(7)),
                quantity: Some(json!(0)),
                ..Default::default()
            },
            RawItem {
                quantity: Some(json!(1)),
                ..Default::default()
            },
        ];
        let b = RawBuyer {
            name: "".into(),
            phone: "123".into(),
            address: "x".into(),
            email: Some("nope".into()),
            note: None,
            ..Default::default()
        };
        let Err(AppError::Validation(f)) = validate(&items, &b, "cash", &BTreeMap::new()) else {
            panic!()
        };
        for k in [
            "items[0].quantity",
            "items[1].product_id",
            "buyer.name",
            "buyer.phone",
            "buyer.address",
            "buyer.email",
            "method",
        ] {
            assert!(f.get(k).is_some(), "{k}: {f:?}");
        }
        let Err(AppError::Validation(f)) = validate(&[], &buyer(), "vietqr", &BTreeMap::new())
        else {
            panic!()
        };
        assert!(f.get("items").is_some());
    }
}
