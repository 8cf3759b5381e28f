//! Addresses as the country counts them since 1 July 2025: 34 provinces and 3,321 communes,
//! wards and special zones (no districts). The list ships in the crate (`units-2025.tsv`,
//! generated from PyPI `vietnamadminunits` 1.0.4, MIT, licence beside it) and is read once.
//! Codes are the official ones; a ward code is unique in the country.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::domain::text::{clean_line, fold};
use crate::error::FieldErrors;

/// The dataset's name and version, stored beside an address's codes (codes were reused with
/// new names in 2025, so a code alone does not say which list it came from).
pub const DATASET: &str = "vn-2025-07/vietnamadminunits-1.0.4";

const SOURCE: &str = include_str!("units-2025.tsv");

/// A province or a commune-level unit: its official code and full name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unit {
    #[schema(example = "01")]
    pub code: &'static str,
    #[schema(example = "Thành phố Hà Nội")]
    pub name: &'static str,
}

struct Units {
    provinces: Vec<Unit>,
    /// Wards of each province, in the list's order.
    wards: HashMap<&'static str, Vec<Unit>>,
    /// Ward code → (province code, index in its province's list).
    ward_at: HashMap<&'static str, (&'static str, usize)>,
}

fn units() -> &'static Units {
    static UNITS: OnceLock<Units> = OnceLock::new();
    UNITS.get_or_init(|| {
        let mut u = Units {
            provinces: Vec::with_capacity(34),
            wards: HashMap::with_capacity(34),
            ward_at: HashMap::with_capacity(3_400),
        };
        let mut current: &'static str = "";
        for line in SOURCE.lines().filter(|l| !l.starts_with('#')) {
            let mut f = line.split('\t');
            let (Some(kind), Some(code), Some(name)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            match kind {
                "P" => {
                    current = code;
                    u.provinces.push(Unit { code, name });
                    u.wards.insert(code, Vec::new());
                }
                _ => {
                    let list = u
                        .wards
                        .get_mut(current)
                        .expect("a ward follows its province");
                    u.ward_at.insert(code, (current, list.len()));
                    list.push(Unit { code, name });
                }
            }
        }
        u
    })
}

pub fn provinces() -> &'static [Unit] {
    &units().provinces
}

pub fn province(code: &str) -> Option<&'static Unit> {
    units().provinces.iter().find(|p| p.code == code)
}

/// The wards of a province, or `None` for a code that names no province.
pub fn wards(province: &str) -> Option<&'static [Unit]> {
    units().wards.get(province).map(Vec::as_slice)
}

/// A ward by its code, with its province's code.
pub fn ward(code: &str) -> Option<(&'static str, &'static Unit)> {
    let (p, i) = *units().ward_at.get(code)?;
    Some((p, &units().wards[p][i]))
}

/// Wards of a province whose name holds what was typed, diacritics or not ("phu xuyen").
pub fn filter_wards(province: &str, typed: &str) -> Vec<&'static Unit> {
    let want = fold(typed.trim());
    wards(province)
        .unwrap_or(&[])
        .iter()
        .filter(|w| want.is_empty() || fold(w.name).contains(&want))
        .collect()
}

/// An address as sent: codes from the lists, then street and house as typed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
pub struct RawAddress {
    #[serde(default)]
    #[schema(example = "01")]
    pub province_code: String,
    #[serde(default)]
    #[schema(example = "10273")]
    pub ward_code: String,
    #[serde(default)]
    #[schema(example = "Số 5, thôn Phú Đôi")]
    pub street: String,
}

impl RawAddress {
    pub fn is_blank(&self) -> bool {
        self.province_code.trim().is_empty()
            && self.ward_code.trim().is_empty()
            && self.street.trim().is_empty()
    }
}

/// A checked two-level address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub province_code: &'static str,
    pub ward_code: &'static str,
    pub street: String,
}

impl Address {
    /// Check an address; problems are named `{prefix}province_code`, `…ward_code`, `…street`.
    pub fn parse(raw: &RawAddress, e: &mut FieldErrors, prefix: &str) -> Option<Address> {
        let f = |n: &str| format!("{prefix}{n}");
        let province = match province(raw.province_code.trim()) {
            Some(p) => Some(p),
            None => {
                e.add(&f("province_code"), "vui lòng chọn tỉnh, thành phố");
                None
            }
        };
        let ward = match (province, ward(raw.ward_code.trim())) {
            (Some(p), Some((wp, w))) if wp == p.code => Some(w),
            (Some(_), _) => {
                e.add(
                    &f("ward_code"),
                    "vui lòng chọn xã, phường trong tỉnh đã chọn",
                );
                None
            }
            (None, _) => None,
        };
        let street = e.check(
            &f("street"),
            clean_line(&raw.street, "số nhà, đường, thôn", 200),
        );
        Some(Address {
            province_code: province?.code,
            ward_code: ward?.code,
            street: street?,
        })
    }

    pub fn from_codes(province_code: &str, ward_code: &str, street: &str) -> Option<Address> {
        let (p, w) = ward(ward_code)?;
        (p == province_code).then(|| Address {
            province_code: p,
            ward_code: w.code,
            street: street.to_string(),
        })
    }

    pub fn ward_name(&self) -> &'static str {
        ward(self.ward_code).map(|(_, w)| w.name).unwrap_or("")
    }

    pub fn province_name(&self) -> &'static str {
        province(self.province_code).map(|p| p.name).unwrap_or("")
    }

    /// The address as one line, the way a parcel label reads it.
    pub fn line(&self) -> String {
        format!(
            "{}, {}, {}",
            self.street,
            self.ward_name(),
            self.province_name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_holds_the_country_as_counted_since_july_2025() {
        assert_eq!(provinces().len(), 34);
        let wards: usize = provinces()
            .iter()
            .map(|p| wards(p.code).unwrap().len())
            .sum();
        assert_eq!(wards, 3_321);
        assert_eq!(province("01").unwrap().name, "Thành phố Hà Nội");
        let (p, w) = ward("10273").unwrap();
        assert_eq!((p, w.name), ("01", "Xã Phú Xuyên"));
        // Ward names repeat across provinces; their codes do not.
        assert_eq!(ward("05773").unwrap().1.name, "Xã Phú Xuyên");
        assert_eq!(ward("05773").unwrap().0, "19");
    }

    #[test]
    fn a_ward_must_be_in_the_province_chosen() {
        let mut e = FieldErrors::new();
        let raw = RawAddress {
            province_code: "01".into(),
            ward_code: "05773".into(),
            street: "Số 5".into(),
        };
        assert!(Address::parse(&raw, &mut e, "address.").is_none());
        assert!(e.get("address.ward_code").is_some());
        let mut e = FieldErrors::new();
        let raw = RawAddress {
            ward_code: "10273".into(),
            ..raw
        };
        let a = Address::parse(&raw, &mut e, "").unwrap();
        assert!(e.is_empty());
        assert_eq!(a.line(), "Số 5, Xã Phú Xuyên, Thành phố Hà Nội");
    }

    #[test]
    fn typing_without_marks_filters_the_wards() {
        let found: Vec<&str> = filter_wards("01", "phu xuyen")
            .iter()
            .map(|w| w.name)
            .collect();
        assert_eq!(found, vec!["Xã Phú Xuyên"]);
        assert_eq!(filter_wards("01", "").len(), wards("01").unwrap().len());
        assert!(filter_wards("99", "a").is_empty());
    }
}
