//! The ways an order can travel: the shop's own delivery or a carrier. Here, below every
//! room, because orders, payments, the notices and the pages all name them (the rules of
//! each way live in `shipping`).

use serde::{Deserialize, Serialize};

/// A way a shop ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// "Tự giao": the seller delivers (or sends by coach) at the shop's own fee table.
    #[serde(rename = "self")]
    SelfDelivery,
    Ghn,
    Ghtk,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::SelfDelivery, Method::Ghn, Method::Ghtk];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::SelfDelivery => "self",
            Method::Ghn => "ghn",
            Method::Ghtk => "ghtk",
        }
    }

    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s.trim())
    }

    /// What a buyer and a seller read.
    pub fn words(self) -> &'static str {
        match self {
            Method::SelfDelivery => "Người bán tự giao",
            Method::Ghn => "Giao Hàng Nhanh (GHN)",
            Method::Ghtk => "Giao Hàng Tiết Kiệm (GHTK)",
        }
    }
}
