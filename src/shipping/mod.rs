//! Delivery: addresses as the country counts them since 2025 (addresses.rs), each shop's
//! pickup address and ways to ship (settings here, stored by store.rs), and the fee of a
//! shop's order to a buyer's address (pure here: the shop's own "tự giao" table).
//! Checkout (`orders`) asks this room for the fee of the option a buyer chose.

pub mod addresses;
pub mod carriers;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::domain::money::format_vnd;
use crate::error::{AppError, FieldErrors};
use addresses::{Address, RawAddress};

pub use crate::domain::shipping_method::Method;

/// The shop's own delivery fees by how far the buyer is from its pickup address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SelfFees {
    /// To the same commune or ward.
    pub same_commune: i64,
    /// Elsewhere in the same province.
    pub same_province: i64,
    pub elsewhere: i64,
    /// Free when the goods of the order come to at least this much.
    pub free_from: Option<i64>,
}

/// How far a parcel goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    SameCommune,
    SameProvince,
    Elsewhere,
}

pub fn zone(from: &Address, to: &Address) -> Zone {
    if from.ward_code == to.ward_code {
        Zone::SameCommune
    } else if from.province_code == to.province_code {
        Zone::SameProvince
    } else {
        Zone::Elsewhere
    }
}

impl SelfFees {
    /// The fee of an order whose goods cost `goods`, from `from` to `to`.
    pub fn fee(&self, from: &Address, to: &Address, goods: i64) -> i64 {
        if self.free_from.is_some_and(|f| goods >= f) {
            return 0;
        }
        match zone(from, to) {
            Zone::SameCommune => self.same_commune,
            Zone::SameProvince => self.same_province,
            Zone::Elsewhere => self.elsewhere,
        }
    }
}

/// What a shop sends to set its ways to ship (`PUT /api/v1/shops/{slug}/shipping`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawSettings {
    #[serde(default)]
    pub pickup: RawAddress,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub self_fees: Option<RawSelfFees>,
    /// The shop's own GHN account (its token and GHN shop id): GHN is then booked and paid
    /// by the shop, the fee is the shop's money. Absent: kept as it was; `""`: removed.
    #[serde(default)]
    pub ghn_token: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::domain::text_or_number)]
    pub ghn_shop_id: Option<serde_json::Value>,
    /// The shop's own GHTK token (absent: kept; `""`: removed).
    #[serde(default)]
    pub ghtk_token: Option<String>,
}

/// Fees as sent: numbers or the digits of a form.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawSelfFees {
    #[schema(schema_with = crate::domain::text_or_number)]
    pub same_commune: Option<serde_json::Value>,
    #[schema(schema_with = crate::domain::text_or_number)]
    pub same_province: Option<serde_json::Value>,
    #[schema(schema_with = crate::domain::text_or_number)]
    pub elsewhere: Option<serde_json::Value>,
    #[schema(schema_with = crate::domain::text_or_number)]
    pub free_from: Option<serde_json::Value>,
}

/// A shop's checked shipping settings (its tokens never printed: `Debug` hides them).
#[derive(Clone, PartialEq)]
pub struct Settings {
    pub pickup: Address,
    pub methods: Vec<Method>,
    pub self_fees: SelfFees,
    /// The shop's own carrier accounts, used instead of the platform's: (token, GHN shop id)
    /// and GHTK's token. Never shown back, never logged.
    pub own_ghn: Option<(String, i64)>,
    pub own_ghtk: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("pickup", &self.pickup)
            .field("methods", &self.methods)
            .field("self_fees", &self.self_fees)
            .field("own_ghn", &self.own_ghn.as_ref().map(|(_, id)| ("***", id)))
            .field("own_ghtk", &self.own_ghtk.as_ref().map(|_| "***"))
            .finish()
    }
}

impl Settings {
    /// The carriers this shop can ship with: its own accounts, else the platform's.
    pub fn carriers(
        &self,
        platform: &crate::config::CarriersConfig,
    ) -> crate::config::CarriersConfig {
        let mut c = platform.clone();
        if let Some((token, shop_id)) = &self.own_ghn {
            c.ghn = Some(crate::config::GhnConfig {
                token: token.clone(),
                shop_id: *shop_id,
                api_url: platform.ghn_api_url.clone(),
            });
        }
        if let Some(token) = &self.own_ghtk {
            c.ghtk = Some(crate::config::GhtkConfig {
                token: token.clone(),
                partner_code: platform
                    .ghtk
                    .as_ref()
                    .map(|g| g.partner_code.clone())
                    .unwrap_or_default(),
                api_url: platform.ghtk_api_url.clone(),
            });
        }
        c
    }

    /// Whether `m` is booked and paid with the shop's own account (its fee is the shop's).
    pub fn own_account(&self, m: Method) -> bool {
        match m {
            Method::SelfDelivery => true,
            Method::Ghn => self.own_ghn.is_some(),
            Method::Ghtk => self.own_ghtk.is_some(),
        }
    }
}

/// The most a shop may ask for delivering one order itself.
pub const MAX_SELF_FEE: i64 = 2_000_000;

fn amount(v: &Option<serde_json::Value>, required: bool) -> Result<Option<i64>, String> {
    let n = match v {
        None | Some(serde_json::Value::Null) => {
            return if required {
                Err("vui lòng nhập phí".into())
            } else {
                Ok(None)
            };
        }
        Some(serde_json::Value::String(s)) if s.trim().is_empty() => {
            return if required {
                Err("vui lòng nhập phí (0 nếu miễn phí)".into())
            } else {
                Ok(None)
            };
        }
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => {
            let digits: String = s
                .chars()
                .filter(|c| !matches!(c, '.' | ',' | ' ' | 'đ'))
                .collect();
            digits.parse().ok()
        }
        _ => None,
    };
    match n {
        Some(n) if n >= 0 => Ok(Some(n)),
        _ => Err("số tiền là số nguyên đồng, không âm".into()),
    }
}

impl Settings {
    /// Check what a shop sent; every problem is named (`pickup.ward_code`, `self_fees.elsewhere`).
    /// `carriers`: the carriers the platform has an account with (`carriers::available`);
    /// `before`: the shop's settings now (its own accounts are kept unless sent).
    pub fn parse(
        raw: &RawSettings,
        carriers: &[Method],
        before: Option<&Settings>,
    ) -> Result<Settings, AppError> {
        let mut e = FieldErrors::new();
        let pickup = Address::parse(&raw.pickup, &mut e, "pickup.");
        let own_ghn = match raw.ghn_token.as_deref().map(str::trim) {
            None => before.and_then(|b| b.own_ghn.clone()),
            Some("") => None,
            Some(t) if t.len() > 200 || t.chars().any(char::is_whitespace) => {
                e.add("ghn_token", "mã token GHN không hợp lệ");
                None
            }
            Some(t) => {
                let id = match &raw.ghn_shop_id {
                    Some(serde_json::Value::Number(n)) => n.as_i64(),
                    Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
                    _ => None,
                };
                match id.filter(|n| *n > 0) {
                    Some(id) => Some((t.to_string(), id)),
                    None => {
                        e.add(
                            "ghn_shop_id",
                            "cần mã cửa hàng (ShopId) trên GHN, là một số",
                        );
                        None
                    }
                }
            }
        };
        let own_ghtk = match raw.ghtk_token.as_deref().map(str::trim) {
            None => before.and_then(|b| b.own_ghtk.clone()),
            Some("") => None,
            Some(t) if t.len() > 200 || t.chars().any(char::is_whitespace) => {
                e.add("ghtk_token", "mã token GHTK không hợp lệ");
                None
            }
            Some(t) => Some(t.to_string()),
        };
        let usable = |m: Method| {
            carriers.contains(&m)
                || match m {
                    Method::Ghn => own_ghn.is_some(),
                    Method::Ghtk => own_ghtk.is_some(),
                    Method::SelfDelivery => true,
                }
        };
        let mut methods = Vec::new();
        for (i, m) in raw.methods.iter().enumerate() {
            match Method::parse(m) {
                // A carrier the platform has no account with would show buyers nothing.
                Some(m @ (Method::Ghn | Method::Ghtk)) if !usable(m) => e.add(
                    &format!("methods[{i}]"),
                    format!(
                        "Chợ Làng chưa kết nối {}; nhập tài khoản của cửa hàng hoặc chọn cách khác",
                        m.words()
                    ),
                ),
                Some(m) if !methods.contains(&m) => methods.push(m),
                Some(_) => {}
                None => e.add(&format!("methods[{i}]"), "cách giao là self, ghn hoặc ghtk"),
            }
        }
        if raw.methods.is_empty() {
            e.add("methods", "chọn ít nhất một cách giao hàng");
        }
        let mut fees = SelfFees::default();
        if methods.contains(&Method::SelfDelivery) {
            let r = raw.self_fees.clone().unwrap_or_default();
            let mut get = |field: &str, v: &Option<serde_json::Value>, required: bool| {
                let got = e.check(&format!("self_fees.{field}"), amount(v, required));
                match got.flatten() {
                    Some(n) if n > MAX_SELF_FEE && field != "free_from" => {
                        e.add(
                            &format!("self_fees.{field}"),
                            format!("phí tự giao tối đa {}", format_vnd(MAX_SELF_FEE)),
                        );
                        None
                    }
                    other => other,
                }
            };
            fees.same_commune = get("same_commune", &r.same_commune, true).unwrap_or(0);
            fees.same_province = get("same_province", &r.same_province, true).unwrap_or(0);
            fees.elsewhere = get("elsewhere", &r.elsewhere, true).unwrap_or(0);
            fees.free_from = get("free_from", &r.free_from, false);
        }
        e.into_result()?;
        Ok(Settings {
            pickup: pickup.expect("checked"),
            methods,
            self_fees: fees,
            own_ghn,
            own_ghtk,
        })
    }
}

/// One way a buyer may have a shop's order delivered, with its fee.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Quote {
    /// What the checkout sends back to choose it (`self`, `ghn`, `ghtk`).
    pub id: String,
    pub carrier: Method,
    pub fee_vnd: i64,
    /// The day the carrier expects to deliver (Hà Nội date), when it says.
    pub expected_on: Option<String>,
    /// Booked and paid with the shop's own account (or the shop's own delivery): the fee is
    /// the shop's money; otherwise it is owed to the carrier through the platform.
    #[serde(skip)]
    pub shop_account: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(ward: &str) -> Address {
        let (p, _) = addresses::ward(ward).unwrap();
        Address::from_codes(p, ward, "Số 1").unwrap()
    }

    #[test]
    fn the_fee_follows_the_distance_and_the_free_threshold() {
        let fees = SelfFees {
            same_commune: 0,
            same_province: 20_000,
            elsewhere: 40_000,
            free_from: Some(1_000_000),
        };
        let shop = at("10273"); // Xã Phú Xuyên, Hà Nội
        assert_eq!(fees.fee(&shop, &at("10273"), 100_000), 0);
        assert_eq!(fees.fee(&shop, &at("10330"), 100_000), 20_000); // Chuyên Mỹ, Hà Nội
        assert_eq!(fees.fee(&shop, &at("05773"), 100_000), 40_000); // Phú Xuyên, Thái Nguyên
        assert_eq!(fees.fee(&shop, &at("05773"), 999_999), 40_000);
        assert_eq!(fees.fee(&shop, &at("05773"), 1_000_000), 0);
    }

    #[test]
    fn a_shops_tokens_never_print() {
        let raw: RawSettings = serde_json::from_value(json!({
            "pickup": {"province_code": "01", "ward_code": "10273", "street": "Thôn Phú Đôi"},
            "methods": ["self", "ghn", "ghtk"],
            "self_fees": {"same_commune": 0, "same_province": 1, "elsewhere": 2},
            "ghn_token": "secret-ghn-token", "ghn_shop_id": "4242", "ghtk_token": "secret-ghtk"
        }))
        .unwrap();
        let s = Settings::parse(&raw, &[], None).unwrap();
        assert_eq!(s.own_ghn, Some(("secret-ghn-token".into(), 4242)));
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("secret") && shown.contains("4242"),
            "{shown}"
        );
    }

    #[test]
    fn settings_name_every_problem() {
        let raw: RawSettings = serde_json::from_value(json!({
            "pickup": {"province_code": "01", "ward_code": "05773", "street": ""},
            "methods": ["self", "viettel", "ghn"],
            "self_fees": {"same_commune": -1, "same_province": "20.000", "elsewhere": 5_000_000}
        }))
        .unwrap();
        let AppError::Validation(e) = Settings::parse(&raw, &[Method::Ghtk], None).unwrap_err()
        else {
            panic!("a validation error")
        };
        for f in [
            "pickup.ward_code",
            "pickup.street",
            "methods[1]",
            "methods[2]",
            "self_fees.same_commune",
            "self_fees.elsewhere",
        ] {
            assert!(e.get(f).is_some(), "{f}: {e:?}");
        }
        assert!(e.get("self_fees.same_province").is_none());
        let ok: RawSettings = serde_json::from_value(json!({
            "pickup": {"province_code": "01", "ward_code": "10273", "street": "Thôn Phú Đôi"},
            "methods": ["self"],
            "self_fees": {"same_commune": 0, "same_province": "20.000", "elsewhere": 40000, "free_from": ""}
        }))
        .unwrap();
        let s = Settings::parse(&ok, &[], None).unwrap();
        assert_eq!(s.self_fees.same_province, 20_000);
        assert_eq!(s.self_fees.free_from, None);
    }
}
