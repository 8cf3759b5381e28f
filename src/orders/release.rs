//! When an order's money is released to its shop (buyer protection), as a pure rule:
//!
//! - the buyer confirms receipt → at once;
//! - delivered (a carrier's confirmation or the seller's word) → `guarantee_days` later;
//! - shipped and nothing heard → `shipped_days` after shipping;
//! - the buyer may extend the running window once by `extend_days`;
//! - an open return/refund request freezes it; nothing is released before shipping.
//!
//! The housekeeping task, the seller's pages and the API all read this one function.

use serde::Serialize;

const DAY_MS: i64 = 86_400_000;

pub use crate::config::ReleaseRules as Rules;

/// Who said the goods arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveredBy {
    Seller,
    Carrier,
    Buyer,
}

impl DeliveredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveredBy::Seller => "seller",
            DeliveredBy::Carrier => "carrier",
            DeliveredBy::Buyer => "buyer",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveredBy> {
        match s {
            "seller" => Some(DeliveredBy::Seller),
            "carrier" => Some(DeliveredBy::Carrier),
            "buyer" => Some(DeliveredBy::Buyer),
            _ => None,
        }
    }
}

/// What the rule reads of an order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    /// The order is being served (paid … delivered), not cancelled or refunded.
    pub live: bool,
    pub shipped_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub delivered_by: Option<DeliveredBy>,
    pub received_at: Option<i64>,
    pub extended: bool,
    pub released_at: Option<i64>,
    pub request_open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseState {
    /// Not shipped yet: the money waits.
    NotShipped,
    /// Waiting for the buyer; released automatically at `at`.
    Waiting,
    /// A return/refund request is open: nothing moves until it is settled.
    Frozen,
    /// The window is over: released at the next pass of the housekeeping task.
    Due,
    Released,
    /// Cancelled or refunded: there is nothing to release.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    NotShipped,
    BuyerConfirmed,
    Delivered,
    CarrierDelivered,
    Shipped,
    RequestOpen,
    NotLive,
}

/// The release block of an order (pages and the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Release {
    pub state: ReleaseState,
    /// When it was or will be released (UTC milliseconds), if known.
    pub at: Option<i64>,
    pub reason: ReleaseReason,
}

impl Release {
    pub fn is_due(&self) -> bool {
        self.state == ReleaseState::Due
    }

    /// The seller's line: "Chờ người mua xác nhận — tự động ngày 09/12".
    pub fn words(&self) -> String {
        let day = |at: Option<i64>| at.map(crate::domain::format_vn_date).unwrap_or_default();
        match self.state {
            ReleaseState::NotShipped => "Tiền được giữ cho đến khi người mua nhận hàng".into(),
            ReleaseState::Waiting => match self.reason {
                ReleaseReason::Shipped => format!(
                    "Chờ người mua nhận hàng — tự động chuyển ngày {}",
                    day(self.at)
                ),
                _ => format!("Chờ người mua xác nhận — tự động ngày {}", day(self.at)),
            },
            ReleaseState::Frozen => {
                "Người mua có yêu cầu trả hàng / hoàn tiền — tạm giữ tiền".into()
            }
            ReleaseState::Due => "Đến hạn — tiền sẽ sang số dư trong ít phút".into(),
            ReleaseState::Released => match self.reason {
                ReleaseReason::BuyerConfirmed => {
                    format!("Người mua đã nhận hàng — đã chuyển ngày {}", day(self.at))
                }
                _ => format!("Đã chuyển vào số dư ngày {}", day(self.at)),
            },
            ReleaseState::None => "Đơn không còn tiền để chuyển".into(),
        }
    }
}

/// The rule itself, at `now`.
pub fn release(f: &Facts, rules: &Rules, now: i64) -> Release {
    let reason_of_delivery = |by: Option<DeliveredBy>| match by {
        Some(DeliveredBy::Carrier) => ReleaseReason::CarrierDelivered,
        Some(DeliveredBy::Buyer) => ReleaseReason::BuyerConfirmed,
        _ => ReleaseReason::Delivered,
    };
    if let Some(at) = f.released_at {
        let reason = if f.received_at.is_some() {
            ReleaseReason::BuyerConfirmed
        } else if f.delivered_at.is_some() {
            reason_of_delivery(f.delivered_by)
        } else {
            ReleaseReason::Shipped
        };
        return Release {
            state: ReleaseState::Released,
            at: Some(at),
            reason,
        };
    }
    if !f.live {
        return Release {
            state: ReleaseState::None,
            at: None,
            reason: ReleaseReason::NotLive,
        };
    }
    if f.request_open {
        return Release {
            state: ReleaseState::Frozen,
            at: None,
            reason: ReleaseReason::RequestOpen,
        };
    }
    let extra = if f.extended {
        rules.extend_days * DAY_MS
    } else {
        0
    };
    let (at, reason) = if let Some(at) = f.received_at {
        (at, ReleaseReason::BuyerConfirmed)
    } else if let Some(d) = f.delivered_at {
        (
            d + rules.guarantee_days * DAY_MS + extra,
            reason_of_delivery(f.delivered_by),
        )
    } else if let Some(s) = f.shipped_at {
        (
            s + rules.shipped_days * DAY_MS + extra,
            ReleaseReason::Shipped,
        )
    } else {
        return Release {
            state: ReleaseState::NotShipped,
            at: None,
            reason: ReleaseReason::NotShipped,
        };
    };
    Release {
        state: if now >= at {
            ReleaseState::Due
        } else {
            ReleaseState::Waiting
        },
        at: Some(at),
        reason,
    }
}

/// The buyer may extend once, while the money still waits for them.
pub fn may_extend(f: &Facts) -> bool {
    f.live
        && f.released_at.is_none()
        && f.received_at.is_none()
        && f.shipped_at.is_some()
        && !f.extended
        && !f.request_open
}

/// The buyer may confirm or raise a request once the goods left and until the money went.
pub fn buyer_may_act(f: &Facts) -> bool {
    f.live && f.released_at.is_none() && f.received_at.is_none() && f.shipped_at.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_765_000_000_000;

    fn shipped() -> Facts {
        Facts {
            live: true,
            shipped_at: Some(T0),
            ..Facts::default()
        }
    }

    #[test]
    fn nothing_before_shipping_and_nothing_for_dead_orders() {
        let f = Facts {
            live: true,
            ..Facts::default()
        };
        assert_eq!(
            release(&f, &Rules::default(), T0).state,
            ReleaseState::NotShipped
        );
        let f = Facts {
            live: false,
            shipped_at: Some(T0),
            ..Facts::default()
        };
        assert_eq!(
            release(&f, &Rules::default(), T0 + 100 * DAY_MS).state,
            ReleaseState::None
        );
    }

    #[test]
    fn shipped_and_nothing_heard_waits_the_shipped_window() {
        let r = Rules::default();
        let f = shipped();
        let w = release(&f, &r, T0 + 9 * DAY_MS);
        assert_eq!(w.state, ReleaseState::Waiting);
        assert_eq!(w.at, Some(T0 + 10 * DAY_MS));
        assert_eq!(w.reason, ReleaseReason::Shipped);
        assert!(release(&f, &r, T0 + 10 * DAY_MS).is_due());
    }

    #[test]
    fn a_sellers_delivered_never_releases_at_once() {
        let r = Rules::default();
        let f = Facts {
            delivered_at: Some(T0 + DAY_MS),
            delivered_by: Some(DeliveredBy::Seller),
            ..shipped()
        };
        let w = release(&f, &r, T0 + DAY_MS);
        assert_eq!(w.state, ReleaseState::Waiting);
        assert_eq!(w.at, Some(T0 + 4 * DAY_MS));
        assert!(!release(&f, &r, T0 + 4 * DAY_MS - 1).is_due());
        assert!(release(&f, &r, T0 + 4 * DAY_MS).is_due());
        let carrier = Facts {
            delivered_by: Some(DeliveredBy::Carrier),
            ..f
        };
        assert_eq!(
            release(&carrier, &r, T0).reason,
            ReleaseReason::CarrierDelivered
        );
    }

    #[test]
    fn the_buyers_confirmation_releases_at_once() {
        let f = Facts {
            received_at: Some(T0 + DAY_MS),
            ..shipped()
        };
        let w = release(&f, &Rules::default(), T0 + DAY_MS);
        assert!(w.is_due());
        assert_eq!(w.reason, ReleaseReason::BuyerConfirmed);
        assert!(!buyer_may_act(&f));
    }

    #[test]
    fn one_extension_of_three_days() {
        let r = Rules::default();
        let f = Facts {
            delivered_at: Some(T0),
            delivered_by: Some(DeliveredBy::Seller),
            ..shipped()
        };
        assert!(may_extend(&f));
        let ext = Facts {
            extended: true,
            ..f
        };
        assert!(!may_extend(&ext));
        assert_eq!(release(&ext, &r, T0).at, Some(T0 + 6 * DAY_MS));
        assert!(!release(&ext, &r, T0 + 5 * DAY_MS).is_due());
        let shipped_ext = Facts {
            extended: true,
            ..shipped()
        };
        assert_eq!(release(&shipped_ext, &r, T0).at, Some(T0 + 13 * DAY_MS));
    }

    #[test]
    fn an_open_request_freezes_even_a_passed_window() {
        let f = Facts {
            request_open: true,
            ..shipped()
        };
        let w = release(&f, &Rules::default(), T0 + 30 * DAY_MS);
        assert_eq!(w.state, ReleaseState::Frozen);
        assert!(!may_extend(&f));
        // Once closed, a passed window releases at the next pass.
        assert!(release(&shipped(), &Rules::default(), T0 + 30 * DAY_MS).is_due());
    }

    #[test]
    fn released_is_final_and_says_why() {
        let f = Facts {
            received_at: Some(T0),
            released_at: Some(T0),
            ..shipped()
        };
        let w = release(&f, &Rules::default(), T0);
        assert_eq!(w.state, ReleaseState::Released);
        assert!(w.words().contains("Người mua đã nhận hàng"));
        assert!(!may_extend(&f) && !buyer_may_act(&f));
    }

    #[test]
    fn the_sellers_words_name_the_day() {
        let f = Facts {
            delivered_at: Some(T0),
            delivered_by: Some(DeliveredBy::Seller),
            ..shipped()
        };
        let w = release(&f, &Rules::default(), T0);
        let day = crate::domain::format_vn_date(T0 + 3 * DAY_MS);
        assert_eq!(
            w.words(),
            format!("Chờ người mua xác nhận — tự động ngày {day}")
        );
    }
}
