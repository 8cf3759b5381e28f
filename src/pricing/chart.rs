//! An item's agreed price over time as a small SVG drawn on the server: no JavaScript, scales
//! to the phone's width (viewBox), a step line (a price holds until the next change) with a
//! dot per change, the lowest and highest price and the first and last date written on it,
//! and a title and description for screen readers. The page lists the same dates and prices
//! as text beside it.

use super::PriceChange;
use crate::domain::money::format_vnd;

const W: f64 = 320.0;
const H: f64 = 132.0;
/// Room for the price labels on the left and the dates below.
const LEFT: f64 = 62.0;
const RIGHT: f64 = 10.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 24.0;

/// A day in Hà Nội, `dd/mm/yyyy`.
pub fn day(ms: i64) -> String {
    crate::domain::format_vn_time(ms)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart of one item's changes (oldest first or not: they are sorted here), up to `now`.
/// `id` makes the title and description ids unique on the page. None without any change.
pub fn svg(id: &str, item_name: &str, changes: &[PriceChange], now: i64) -> Option<String> {
    let mut points: Vec<(i64, i64)> = changes.iter().map(|c| (c.at, c.new_price_vnd)).collect();
    points.sort();
    let (&(t0, _), &(t_last, p_last)) = (points.first()?, points.last()?);
    let t1 = now.max(t_last + 1);
    let (lo, hi) = points
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &(_, p)| {
            (lo.min(p), hi.max(p))
        });
    // 10 % room above and below (a flat history sits in the middle).
    let pad = ((hi - lo) / 10).max(1);
    let (lo_axis, hi_axis) = (lo - pad, hi + pad);
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (W - LEFT - RIGHT);
    let y = |p: i64| TOP + (hi_axis - p) as f64 / (hi_axis - lo_axis) as f64 * (H - TOP - BOTTOM);
    let mut path = String::new();
    for (i, &(t, p)) in points.iter().enumerate() {
        if i == 0 {
            path.push_str(&format!("M{:.1} {:.1}", x(t), y(p)));
        } else {
            // Hold the old price until this change, then step.
            path.push_str(&format!(" H{:.1} V{:.1}", x(t), y(p)));
        }
    }
    path.push_str(&format!(" H{:.1}", x(t1)));
    let dots: String = points
        .iter()
        .map(|&(t, p)| format!(r#"<circle cx="{:.1}" cy="{:.1}" r="3"/>"#, x(t), y(p)))
        .collect();
    let name = esc(item_name);
    let desc = format!(
        "{} thay đổi giá từ {} đến {}; giá thấp nhất {}, cao nhất {}, hiện nay {}.",
        points.len(),
        day(t0),
        day(t_last),
        format_vnd(lo),
        format_vnd(hi),
        format_vnd(p_last)
    );
    let bottom = H - BOTTOM;
    Some(format!(
        concat!(
            r#"<svg class="price-chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg">"#,
            r#"<title id="{id}-t">Giá cộng đồng của {name} theo thời gian</title>"#,
            r#"<desc id="{id}-d">{desc}</desc>"#,
            r#"<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>"#,
            r#"<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>"#,
            r#"<text x="{lx}" y="{yhi}" text-anchor="end">{hi}</text>"#,
            r#"<text x="{lx}" y="{ylo}" text-anchor="end">{lo}</text>"#,
            r#"<text x="{left}" y="{ty}" text-anchor="start">{d0}</text>"#,
            r#"<text x="{right}" y="{ty}" text-anchor="end">nay</text>"#,
            r#"<path class="line" d="{path}"/>{dots}</svg>"#
        ),
        w = W,
        h = H,
        id = id,
        name = name,
        desc = esc(&desc),
        left = LEFT,
        top = TOP,
        bottom = bottom,
        right = W - RIGHT,
        lx = LEFT - 4.0,
        yhi = y(hi) + 4.0,
        ylo = y(lo) + 4.0,
        hi = format_vnd(hi),
        lo = format_vnd(lo),
        ty = H - 8.0,
        d0 = day(t0),
        path = path,
        dots = dots,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(at: i64, price: i64) -> PriceChange {
        PriceChange {
            id: 0,
            price_item_id: 1,
            item_name: "Màn <tuyn>".into(),
            unit: "chiếc".into(),
            old_price_vnd: None,
            new_price_vnd: price,
            source: "proposal".into(),
            proposal_id: None,
            actor: None,
            at,
        }
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_step_line_with_labels_and_a_description() {
        let t0 = 1_764_547_200_000; // 01/12/2025 07:00 in Hà Nội
        let s = svg(
            "c1",
            "Màn <tuyn>",
            &[change(t0 + 30 * DAY, 200_000), change(t0, 180_000)],
            t0 + 60 * DAY,
        )
        .unwrap();
        assert!(s.starts_with("<svg class=\"price-chart\" viewBox=\"0 0 320 132\""));
        assert!(s.contains(
            "<title id=\"c1-t\">Giá cộng đồng của Màn &lt;tuyn&gt; theo thời gian</title>"
        ));
        assert!(s.contains("2 thay đổi giá từ 01/12/2025 đến 31/12/2025"));
        assert!(s.contains(">200.000 ₫</text>") && s.contains(">180.000 ₫</text>"));
        assert_eq!(s.matches("<circle").count(), 2);
        // Starts at the left edge on the older price, steps up halfway, ends at the right.
        assert!(s.contains("d=\"M62.0 "), "{s}");
        assert!(s.contains(" H186.0 V"), "{s}");
        assert!(s.ends_with(" H310.0\"/><circle cx=\"62.0\" cy=\"100.0\" r=\"3\"/><circle cx=\"186.0\" cy=\"20.0\" r=\"3\"/></svg>"), "{s}");
        // The higher price is drawn higher (smaller y).
        assert!(s.contains("cy=\"20.0\"") && s.contains("cy=\"100.0\""));
    }

    #[test]
    fn one_price_is_a_flat_line_and_nothing_is_no_chart() {
        let s = svg("c2", "Mật ong", &[change(1_000, 150_000)], 2_000).unwrap();
        assert_eq!(s.matches("<circle").count(), 1);
        assert!(s.contains("1 thay đổi giá"));
        assert!(svg("c3", "x", &[], 0).is_none());
    }
}
