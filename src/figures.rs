//! The smart-village figures ("thôn thông minh"): what the marketplace can see going online
//! has done for a village, month by month (Hà Nội months): shops selling, households brought
//! online by the digital team, active shops, orders paid electronically and their value, the
//! share confirmed received by buyers, price proposals and votes, batches recorded, labels
//! printed and origin-page views. Counts only: no buyer's personal data. Each figure is drawn
//! as a small SVG on the server, with the numbers as text beside it, and the same table is a
//! CSV for the commune's report.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sqlx::Row;

use crate::catalog::Village;
use crate::db::Db;
use crate::domain::{vn_date, vn_midnight};
use crate::error::{AppError, FieldErrors, Result};

/// Months one request may span.
pub const MAX_MONTHS: usize = 36;

/// One month of one village.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Month {
    /// `YYYY-MM`, a Hà Nội month.
    pub month: String,
    /// Shops of the village on its board (accepted) by the month's end.
    pub shops_selling: i64,
    /// Households the digital team brought online in the month.
    pub households_onboarded: i64,
    /// Shops with at least one order paid in the month.
    pub active_shops: i64,
    /// Orders paid in the month (by bank transfer/VietQR, payOS or card: all electronic).
    pub orders_paid: i64,
    pub value_paid_vnd: i64,
    /// Of those orders, how many the buyer confirmed received.
    pub confirmed_received: i64,
    /// `confirmed_received` as a whole percent of `orders_paid` (null without orders).
    pub received_percent: Option<i64>,
    pub price_proposals: i64,
    pub votes: i64,
    pub batches_recorded: i64,
    pub labels_printed: i64,
    pub origin_views: i64,
}

/// A village's figures over a range of months.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Figures {
    pub village: String,
    pub from: String,
    pub to: String,
    pub months: Vec<Month>,
}

/// The figures by name, in the page's and the CSV's order: (key, words).
pub const NAMES: &[(&str, &str)] = &[
    ("shops_selling", "Hộ (cửa hàng) bán trên Chợ Làng"),
    (
        "households_onboarded",
        "Hộ được tổ công nghệ số giúp lên mạng",
    ),
    ("active_shops", "Cửa hàng có đơn trong tháng"),
    ("orders_paid", "Đơn hàng trả tiền điện tử"),
    ("value_paid_vnd", "Giá trị đơn trả tiền điện tử (₫)"),
    (
        "received_percent",
        "Tỉ lệ đơn người mua xác nhận đã nhận (%)",
    ),
    ("price_proposals", "Đề xuất giá"),
    ("votes", "Phiếu biểu quyết giá"),
    ("batches_recorded", "Lô hàng ghi nguồn gốc"),
    ("labels_printed", "Lô đã in tem QR"),
    ("origin_views", "Lượt xem trang nguồn gốc"),
];

impl Month {
    /// A figure by its key (0 where a month has none).
    pub fn get(&self, key: &str) -> i64 {
        match key {
            "shops_selling" => self.shops_selling,
            "households_onboarded" => self.households_onboarded,
            "active_shops" => self.active_shops,
            "orders_paid" => self.orders_paid,
            "value_paid_vnd" => self.value_paid_vnd,
            "received_percent" => self.received_percent.unwrap_or(0),
            "price_proposals" => self.price_proposals,
            "votes" => self.votes,
            "batches_recorded" => self.batches_recorded,
            "labels_printed" => self.labels_printed,
            "origin_views" => self.origin_views,
            _ => 0,
        }
    }
}

fn parse_month(s: &str) -> Option<NaiveDate> {
    let (y, m) = s.trim().split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

fn next_month(d: NaiveDate) -> NaiveDate {
    if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
    }
    .expect("a first of the month")
}

/// `from`/`to` as `YYYY-MM` (either may be empty): the first days of the first and last
/// months. Defaults: the 12 months up to `today`'s.
pub fn parse_range(from: &str, to: &str, today: NaiveDate) -> Result<(NaiveDate, NaiveDate)> {
    let mut e = FieldErrors::new();
    let this_month = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("first");
    let to_d = if to.trim().is_empty() {
        Some(this_month)
    } else {
        e.check(
            "to",
            parse_month(to)
                .filter(|d| d.year() >= 2000 && d.year() <= 2100)
                .ok_or("tháng viết dạng 2026-11"),
        )
    };
    let from_d = if from.trim().is_empty() {
        to_d.map(|t| {
            let mut d = t;
            for _ in 0..11 {
                d = d
                    .pred_opt()
                    .map(|x| NaiveDate::from_ymd_opt(x.year(), x.month(), 1).expect("first"))
                    .unwrap_or(d);
            }
            d
        })
    } else {
        e.check(
            "from",
            parse_month(from)
                .filter(|d| d.year() >= 2000 && d.year() <= 2100)
                .ok_or("tháng viết dạng 2026-01"),
        )
    };
    e.into_result()?;
    let (from_d, to_d) = (from_d.expect("checked"), to_d.expect("checked"));
    if from_d > to_d {
        return Err(AppError::field(
            "from",
            "tháng bắt đầu phải trước tháng kết thúc",
        ));
    }
    let mut n = 1;
    let mut d = from_d;
    while d < to_d {
        d = next_month(d);
        n += 1;
    }
    if n > MAX_MONTHS {
        return Err(AppError::field(
            "from",
            format!("xem nhiều nhất {MAX_MONTHS} tháng một lần"),
        ));
    }
    Ok((from_d, to_d))
}

async fn count(db: &Db, sql: &'static str, village: i64, start: i64, end: i64) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(sql)
        .bind(village)
        .bind(start)
        .bind(end)
        .fetch_one(&db.pool)
        .await?)
}

/// The village's figures for each month from `from` to `to` (first days).
pub async fn load(db: &Db, village: &Village, from: NaiveDate, to: NaiveDate) -> Result<Figures> {
    let v = village.id.0;
    let mut months = Vec::new();
    let mut d = from;
    while d <= to {
        let next = next_month(d);
        let (start, end) = (
            vn_midnight(d).ok_or_else(|| AppError::field("from", "tháng không hợp lệ"))?,
            vn_midnight(next).ok_or_else(|| AppError::field("to", "tháng không hợp lệ"))?,
        );
        let mut m = Month {
            month: d.format("%Y-%m").to_string(),
            ..Default::default()
        };
        m.shops_selling = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM shops WHERE village_id = $1 AND membership = 'accepted'
               AND COALESCE(membership_at, created_at) < $2",
        )
        .bind(v)
        .bind(end)
        .fetch_one(&db.pool)
        .await?;
        m.households_onboarded = count(
            db,
            "SELECT COUNT(*) FROM households WHERE village_id = $1 AND confirmed_at >= $2 AND confirmed_at < $3",
            v,
            start,
            end,
        )
        .await?;
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT o.shop_id) AS shops,
               CAST(COALESCE(SUM(o.total_vnd), 0) AS BIGINT) AS value,
               COUNT(o.received_at) AS received
             FROM orders o
             JOIN shops s ON s.id = o.shop_id
             JOIN payments p ON p.checkout_id = o.checkout_id
             WHERE s.village_id = $1 AND p.paid_at >= $2 AND p.paid_at < $3
               AND o.status NOT IN ('pending_payment', 'cancelled', 'expired')",
        )
        .bind(v)
        .bind(start)
        .bind(end)
        .fetch_one(&db.pool)
        .await?;
        m.orders_paid = r.try_get("n")?;
        m.active_shops = r.try_get("shops")?;
        m.value_paid_vnd = r.try_get("value")?;
        m.confirmed_received = r.try_get("received")?;
        m.received_percent =
            (m.orders_paid > 0).then(|| m.confirmed_received * 100 / m.orders_paid);
        m.price_proposals = count(
            db,
            "SELECT COUNT(*) FROM proposals p JOIN price_items i ON i.id = p.price_item_id
             WHERE i.village_id = $1 AND p.created_at >= $2 AND p.created_at < $3",
            v,
            start,
            end,
        )
        .await?;
        m.votes = count(
            db,
            "SELECT COUNT(*) FROM votes x JOIN proposals p ON p.id = x.proposal_id
             JOIN price_items i ON i.id = p.price_item_id
             WHERE i.village_id = $1 AND x.at >= $2 AND x.at < $3",
            v,
            start,
            end,
        )
        .await?;
        m.batches_recorded = count(
            db,
            "SELECT COUNT(*) FROM batches b JOIN shops s ON s.id = b.shop_id
             WHERE s.village_id = $1 AND b.created_at >= $2 AND b.created_at < $3",
            v,
            start,
            end,
        )
        .await?;
        m.labels_printed = count(
            db,
            "SELECT COUNT(*) FROM batches b JOIN shops s ON s.id = b.shop_id
             WHERE s.village_id = $1 AND b.labels_printed_at >= $2 AND b.labels_printed_at < $3",
            v,
            start,
            end,
        )
        .await?;
        m.origin_views = sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COALESCE(SUM(x.n), 0) AS BIGINT) FROM batch_scans x
             JOIN batches b ON b.id = x.batch_id JOIN shops s ON s.id = b.shop_id
             WHERE s.village_id = $1 AND x.day >= $2 AND x.day < $3",
        )
        .bind(v)
        .bind(d.format("%Y-%m-%d").to_string())
        .bind(next.format("%Y-%m-%d").to_string())
        .fetch_one(&db.pool)
        .await?;
        months.push(m);
        d = next;
    }
    Ok(Figures {
        village: village.name.clone(),
        from: from.format("%Y-%m").to_string(),
        to: to.format("%Y-%m").to_string(),
        months,
    })
}

/// Today in Hà Nội.
pub fn today() -> NaiveDate {
    vn_date(crate::domain::now_ms())
}

/// "11/2026" from "2026-11".
pub fn month_words(m: &str) -> String {
    match m.split_once('-') {
        Some((y, mo)) => format!("{mo}/{y}"),
        None => m.to_string(),
    }
}

fn esc(s: &str) -> String {
    crate::domain::text::escape_html(s)
}

/// A bar per month, the value written above each bar, months below; scales to the phone's
/// width (viewBox). The numbers are also listed as text beside it on the page.
/// `id` tells this chart's title apart from the others' on the page.
pub fn bar_chart(id: &str, title: &str, values: &[(String, i64)]) -> String {
    const W: f64 = 320.0;
    const H: f64 = 120.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 18.0;
    let n = values.len().max(1) as f64;
    let max = values.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1) as f64;
    let slot = W / n;
    let bar = (slot * 0.7).max(2.0);
    let mut out = format!(
        r#"<svg viewBox="0 0 {W} {H}" width="100%" role="img" aria-labelledby="t-{id}" class="figure-chart"><title id="t-{id}">{t}</title>"#,
        t = esc(title)
    );
    let plot = H - TOP - BOTTOM;
    for (i, (label, v)) in values.iter().enumerate() {
        let h = (*v as f64 / max) * plot;
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let y = TOP + plot - h;
        out.push_str(&format!(
            r##"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="#2f6f3e"/>"##
        ));
        if values.len() <= 12 || i % 3 == 0 {
            out.push_str(&format!(
                r#"<text x="{cx:.1}" y="{ty:.1}" font-size="9" text-anchor="middle">{v}</text><text x="{cx:.1}" y="{ly:.1}" font-size="8" text-anchor="middle">{l}</text>"#,
                cx = x + bar / 2.0,
                ty = (y - 3.0).max(9.0),
                ly = H - 5.0,
                l = esc(&label.chars().take(2).collect::<String>()),
            ));
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_to_a_year_and_are_bounded() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let (f, t) = parse_range("", "", today).unwrap();
        assert_eq!(f, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        assert_eq!(t, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        let (f, t) = parse_range("2025-11", "2026-02", today).unwrap();
        assert_eq!((f.month(), t.month()), (11, 2));
        assert!(
            parse_range("2020-01", "2026-01", today).is_err(),
            "beyond 36 months"
        );
        assert!(parse_range("2026-05", "2026-01", today).is_err());
        let Err(AppError::Validation(e)) = parse_range("tháng 1", "2026-13", today) else {
            panic!()
        };
        assert!(e.get("from").is_some() && e.get("to").is_some());
    }

    #[test]
    fn a_chart_has_a_bar_and_a_number_per_month() {
        let svg = bar_chart(
            "orders_paid",
            "Đơn hàng",
            &[("11".into(), 3), ("12".into(), 0), ("01".into(), 7)],
        );
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains(">7</text>") && svg.contains("<title"));
    }
}
