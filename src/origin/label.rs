//! Printable origin labels: a vector QR code (level M, 4-module quiet zone, at least 20 mm)
//! beside the product name, village, batch, production date and the village's agreed price,
//! in DejaVu Sans (shipped in `font/`, subset into the PDF by krilla) so every Vietnamese
//! diacritic prints. PDF sheets for print shops (A4 3 × 8, A4 2 × 5) and thermal rolls
//! (50 × 30 mm), and one label as SVG.

use std::sync::LazyLock;

use krilla::Document;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};
use qrcode::{EcLevel, QrCode};

use crate::error::{AppError, Result};

static FONT_BYTES: &[u8] = include_bytes!("font/DejaVuSans.ttf");

static FACE: LazyLock<ttf_parser::Face<'static>> =
    LazyLock::new(|| ttf_parser::Face::parse(FONT_BYTES, 0).expect("shipped font parses"));

const PT_PER_MM: f32 = 72.0 / 25.4;
/// Printed QR symbols are never smaller than this (without the quiet zone).
pub const MIN_QR_MM: f32 = 20.0;
/// Ink stays at least 4 mm from every edge (the QR code's quiet zone may reach closer: it is
/// blank).
pub const EDGE_MM: f32 = 4.0;
/// The line that tells a buyer what the code is for.
pub const SCAN_LINE: &str = "Quét mã để xem ai làm ra sản phẩm này";
pub const QUIET_ZONE: usize = 4;
pub const MAX_COUNT: u32 = 1000;

/// Label PDFs rendered at once in this process, in a pool of their own (photo uploads keep
/// theirs), with a short queue.
pub static RENDERING: crate::limits::Slots =
    crate::limits::Slots::new(2, 16, std::time::Duration::from_secs(30));

/// Renders one seller may have running or waiting at once.
pub const PER_SELLER: usize = 2;

static BY_SELLER: LazyLock<std::sync::Mutex<std::collections::HashMap<String, usize>>> =
    LazyLock::new(Default::default);

/// One of a seller's renders; given back when dropped.
pub struct SellerTurn(String);

impl Drop for SellerTurn {
    fn drop(&mut self) {
        let mut m = BY_SELLER.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.0) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.0);
            }
        }
    }
}

/// A seller's turn to render labels, or 503 (`busy`) when they already have `PER_SELLER`.
/// `seller` names the seller within this process (the database and the user id: one process
/// may serve several databases, as the tests do).
pub fn seller_turn(seller: &str) -> Result<SellerTurn> {
    let mut m = BY_SELLER.lock().unwrap_or_else(|e| e.into_inner());
    let n = m.entry(seller.to_string()).or_insert(0);
    if *n >= PER_SELLER {
        return Err(AppError::Busy("in tem (bạn đang in 2 tệp, hãy chờ xong)"));
    }
    *n += 1;
    Ok(SellerTurn(seller.to_string()))
}

/// Label sheets Vietnamese print shops and thermal printers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sheet {
    /// A4 decal sheet, 3 columns × 8 rows of 70 × 37 mm.
    A4x24,
    /// A4 decal sheet, 2 columns × 5 rows of 105 × 59.4 mm.
    A4x10,
    /// Thermal roll, one 50 × 30 mm label per page.
    Roll50x30,
}

impl Sheet {
    pub const ALL: [Sheet; 3] = [Sheet::A4x24, Sheet::A4x10, Sheet::Roll50x30];

    pub fn parse(s: &str) -> Result<Sheet> {
        match s.trim() {
            "" | "a4-3x8" => Ok(Sheet::A4x24),
            "a4-2x5" => Ok(Sheet::A4x10),
            "roll-50x30" => Ok(Sheet::Roll50x30),
            _ => Err(AppError::field(
                "layout",
                "Khổ tem là a4-3x8, a4-2x5 hoặc roll-50x30",
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Sheet::A4x24 => "a4-3x8",
            Sheet::A4x10 => "a4-2x5",
            Sheet::Roll50x30 => "roll-50x30",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Sheet::A4x24 => "Giấy A4, 3 × 8 tem (70 × 37 mm)",
            Sheet::A4x10 => "Giấy A4, 2 × 5 tem (105 × 59 mm)",
            Sheet::Roll50x30 => "Cuộn tem nhiệt 50 × 30 mm",
        }
    }

    /// Page width and height in mm.
    pub fn page_mm(self) -> (f32, f32) {
        match self {
            Sheet::A4x24 | Sheet::A4x10 => (210.0, 297.0),
            Sheet::Roll50x30 => (50.0, 30.0),
        }
    }

    /// Columns and rows of labels on a page.
    pub fn grid(self) -> (u32, u32) {
        match self {
            Sheet::A4x24 => (3, 8),
            Sheet::A4x10 => (2, 5),
            Sheet::Roll50x30 => (1, 1),
        }
    }

    pub fn per_page(self) -> u32 {
        let (c, r) = self.grid();
        c * r
    }

    /// One label's width and height in mm.
    pub fn label_mm(self) -> (f32, f32) {
        let (w, h) = self.page_mm();
        let (c, r) = self.grid();
        (w / c as f32, h / r as f32)
    }

    /// Nothing printed closer to a label's edge than this: printers leave the paper's
    /// edge blank, and the outer labels of a sheet touch it.
    fn padding_mm(self) -> f32 {
        EDGE_MM
    }

    fn base_pt(self) -> f32 {
        match self {
            Sheet::A4x24 => 7.0,
            Sheet::A4x10 => 10.0,
            Sheet::Roll50x30 => 5.5,
        }
    }
}

/// What one label says.
#[derive(Debug, Clone)]
pub struct LabelText {
    pub qr_payload: String,
    pub product: String,
    pub village: String,
    pub batch: String,
    /// e.g. `30/11/2024`.
    pub produced: String,
    /// e.g. `Giá cộng đồng: 180.000 ₫ / chiếc`.
    pub price: String,
}

/// A label laid out in mm from its top-left corner.
#[derive(Debug, Clone)]
pub struct Laid {
    /// Dark modules as (x, y, width, height) rectangles, rows merged into runs.
    pub qr_rects: Vec<(f32, f32, f32, f32)>,
    /// The QR symbol's side without the quiet zone.
    pub qr_symbol_mm: f32,
    /// Text lines: (x, baseline y, size in pt, text).
    pub lines: Vec<(f32, f32, f32, String)>,
}

/// Advance width of a text in mm at a size in pt.
fn text_mm(text: &str, size_pt: f32) -> f32 {
    let face = &*FACE;
    let upem = f32::from(face.units_per_em());
    let units: f32 = text
        .chars()
        .map(|c| {
            face.glyph_index(c)
                .and_then(|g| face.glyph_hor_advance(g))
                .map(f32::from)
                .unwrap_or(upem * 0.5)
        })
        .sum();
    units / upem * size_pt / PT_PER_MM
}

/// Greedy word wrap to a width; a word longer than the line is cut by characters.
fn wrap(text: &str, size_pt: f32, width_mm: f32) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    // An amount stays with its currency sign: "180.000 ₫" never breaks.
    let mut words: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        match words.last_mut() {
            Some(prev) if w == "₫" => {
                prev.push(' ');
                prev.push_str(w);
            }
            _ => words.push(w.to_string()),
        }
    }
    for word in &words {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if text_mm(&candidate, size_pt) <= width_mm {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            out.push(std::mem::take(&mut line));
        }
        // The word alone: cut it if it still does not fit.
        let mut piece = String::new();
        for c in word.chars() {
            piece.push(c);
            if text_mm(&piece, size_pt) > width_mm && piece.chars().count() > 1 {
                piece.pop();
                out.push(std::mem::take(&mut piece));
                piece.push(c);
            }
        }
        line = piece;
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// The QR code's modules (level M) for a payload.
pub fn qr_modules(payload: &str) -> Result<(usize, Vec<bool>)> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("QR: {e}")))?;
    let n = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Ok((n, dark))
}

/// Lay out one label of a sheet.
pub fn lay_out(sheet: Sheet, t: &LabelText) -> Result<Laid> {
    let (w, h) = sheet.label_mm();
    let pad = sheet.padding_mm();
    let (n, dark) = qr_modules(&t.qr_payload)?;
    // The dark modules keep `pad` from the edges; the quiet zone fits inside the label.
    let quiet = (n + 2 * QUIET_ZONE) as f32;
    let mut module = ((h - 2.0 * pad) / n as f32)
        .min(h / quiet)
        .min(w * 0.55 / quiet);
    if module * (n as f32) < MIN_QR_MM {
        module = MIN_QR_MM / n as f32;
    }
    let qr_x = pad.max(module * QUIET_ZONE as f32);
    let qr_y = (h - module * n as f32) / 2.0;
    let mut qr_rects = Vec::new();
    for y in 0..n {
        let mut x = 0;
        while x < n {
            if dark[y * n + x] {
                let start = x;
                while x < n && dark[y * n + x] {
                    x += 1;
                }
                qr_rects.push((
                    qr_x + start as f32 * module,
                    qr_y + y as f32 * module,
                    (x - start) as f32 * module,
                    module,
                ));
            } else {
                x += 1;
            }
        }
    }
    let text_x = qr_x + module * (n + QUIET_ZONE) as f32;
    let text_w = w - text_x - pad;
    // Shrink the type until everything fits the label's height.
    let mut base = sheet.base_pt();
    loop {
        let blocks: Vec<(f32, Vec<String>)> = [
            (base * 1.15, t.product.clone()),
            (base, t.village.clone()),
            (base, format!("Lô: {}", t.batch)),
            (base, format!("NSX: {}", t.produced)),
            (base, t.price.clone()),
            (base * 0.9, SCAN_LINE.to_string()),
        ]
        .into_iter()
        .map(|(size, text)| (size, wrap(&text, size, text_w)))
        .collect();
        let height_mm: f32 = blocks
            .iter()
            .map(|(size, lines)| lines.len() as f32 * size * 1.2 / PT_PER_MM)
            .sum();
        if height_mm <= h - 2.0 * pad || base <= 3.5 {
            let mut y = pad + (h - 2.0 * pad - height_mm).max(0.0) / 2.0;
            let mut lines = Vec::new();
            for (size, ls) in blocks {
                for l in ls {
                    y += size * 1.2 / PT_PER_MM;
                    // Baseline a fifth of the line above its bottom.
                    lines.push((text_x, y - size * 0.24 / PT_PER_MM, size, l));
                }
            }
            return Ok(Laid {
                qr_rects,
                qr_symbol_mm: module * n as f32,
                lines,
            });
        }
        base *= 0.92;
    }
}

/// `count` labels on as many pages of `sheet` as they need.
pub fn pdf(sheet: Sheet, t: &LabelText, count: u32) -> Result<Vec<u8>> {
    if count == 0 || count > MAX_COUNT {
        return Err(AppError::field(
            "count",
            format!("Số tem từ 1 đến {MAX_COUNT}"),
        ));
    }
    let laid = lay_out(sheet, t)?;
    let font = Font::new(krilla::Data::from(FONT_BYTES), 0)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("label font")))?;
    let (pw, ph) = sheet.page_mm();
    let (lw, lh) = sheet.label_mm();
    let (cols, _) = sheet.grid();
    let settings = PageSettings::from_wh(pw * PT_PER_MM, ph * PT_PER_MM)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("page size")))?;
    let mut doc = Document::new();
    let mut left = count;
    while left > 0 {
        let on_page = left.min(sheet.per_page());
        let mut page = doc.start_page_with(settings.clone());
        let mut surface = page.surface();
        let mut qr = PathBuilder::new();
        for i in 0..on_page {
            let ox = (i % cols) as f32 * lw;
            let oy = (i / cols) as f32 * lh;
            for &(x, y, w, h) in &laid.qr_rects {
                if let Some(r) = Rect::from_xywh(
                    (ox + x) * PT_PER_MM,
                    (oy + y) * PT_PER_MM,
                    w * PT_PER_MM,
                    h * PT_PER_MM,
                ) {
                    qr.push_rect(r);
                }
            }
        }
        if let Some(path) = qr.finish() {
            surface.draw_path(&path);
        }
        for i in 0..on_page {
            let ox = (i % cols) as f32 * lw;
            let oy = (i / cols) as f32 * lh;
            for (x, y, size, text) in &laid.lines {
                surface.draw_text(
                    Point::from_xy((ox + x) * PT_PER_MM, (oy + y) * PT_PER_MM),
                    font.clone(),
                    *size,
                    text,
                    false,
                    TextDirection::Auto,
                );
            }
        }
        surface.finish();
        page.finish();
        left -= on_page;
    }
    doc.finish()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("label PDF: {e:?}")))
}

/// A shop's poster on A5 (148 × 210 mm), for the shop's wall or stall: its name, its village,
/// the agreed-price promise, and a QR code (at least 80 mm) to its page on Chợ Làng.
pub struct Poster<'a> {
    pub shop: &'a str,
    pub village: &'a str,
    pub promise: &'a str,
    pub url: &'a str,
}

/// The A5 poster as a PDF (same font and vector QR as the labels).
pub fn poster_pdf(p: &Poster) -> Result<Vec<u8>> {
    let (pw, ph) = (148.0_f32, 210.0_f32);
    let margin = 12.0_f32;
    let width = pw - 2.0 * margin;
    let mut lines: Vec<(f32, f32, f32, String)> = Vec::new();
    let mut y = margin + 10.0;
    let mut put = |text: &str, size: f32, y: &mut f32, gap: f32| {
        for l in wrap(text, size, width) {
            let x = margin + (width - text_mm(&l, size)).max(0.0) / 2.0;
            lines.push((x, *y, size, l));
            *y += size / PT_PER_MM * 1.35;
        }
        *y += gap;
    };
    put(p.shop, 26.0, &mut y, 2.0);
    put(&format!("Làng {}", p.village), 15.0, &mut y, 4.0);
    put(p.promise, 12.0, &mut y, 4.0);
    let (n, dark) = qr_modules(p.url)?;
    let side = (ph - y - margin - 22.0).min(width).max(MIN_QR_MM);
    let module = side / (n + 2 * QUIET_ZONE) as f32;
    let qx = margin + (width - side) / 2.0 + QUIET_ZONE as f32 * module;
    let qy = y + QUIET_ZONE as f32 * module;
    let mut qr = PathBuilder::new();
    for (i, d) in dark.iter().enumerate() {
        if *d {
            let (cx, cy) = ((i % n) as f32, (i / n) as f32);
            if let Some(r) = Rect::from_xywh(
                (qx + cx * module) * PT_PER_MM,
                (qy + cy * module) * PT_PER_MM,
                module * PT_PER_MM,
                module * PT_PER_MM,
            ) {
                qr.push_rect(r);
            }
        }
    }
    let mut y = y + side + 6.0;
    put(
        "Quét mã để xem cửa hàng và đặt mua trên Chợ Làng",
        12.0,
        &mut y,
        1.0,
    );
    put(p.url, 9.0, &mut y, 0.0);
    let font = Font::new(krilla::Data::from(FONT_BYTES), 0)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("poster font")))?;
    let settings = PageSettings::from_wh(pw * PT_PER_MM, ph * PT_PER_MM)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("page size")))?;
    let mut doc = Document::new();
    let mut page = doc.start_page_with(settings);
    let mut surface = page.surface();
    if let Some(path) = qr.finish() {
        surface.draw_path(&path);
    }
    for (x, y, size, text) in &lines {
        surface.draw_text(
            Point::from_xy(x * PT_PER_MM, y * PT_PER_MM),
            font.clone(),
            *size,
            text,
            false,
            TextDirection::Auto,
        );
    }
    surface.finish();
    page.finish();
    doc.finish()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("poster PDF: {e:?}")))
}

/// One label as SVG (mm units), for previews and label apps.
pub fn svg(sheet: Sheet, t: &LabelText) -> Result<String> {
    use crate::domain::text::escape_html as esc;
    let laid = lay_out(sheet, t)?;
    let (w, h) = sheet.label_mm();
    let mut d = String::new();
    for (x, y, rw, rh) in &laid.qr_rects {
        d.push_str(&format!("M{x:.3} {y:.3}h{rw:.3}v{rh:.3}h-{rw:.3}z"));
    }
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}mm\" height=\"{h}mm\" viewBox=\"0 0 {w} {h}\">\
         <title>{}</title><rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\
         <path d=\"{d}\" fill=\"#000\"/>",
        esc(&format!("Tem truy xuất lô {}", t.batch))
    );
    for (x, y, size, text) in &laid.lines {
        out.push_str(&format!(
            "<text x=\"{x:.2}\" y=\"{y:.2}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"{:.2}\">{}</text>",
            size / PT_PER_MM,
            esc(text)
        ));
    }
    out.push_str("</svg>");
    Ok(out)
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_seller_renders_two_label_files_at_most() {
        let a = super::seller_turn("unit#7").unwrap();
        let b = super::seller_turn("unit#7").unwrap();
        assert!(
            super::seller_turn("unit#7").is_err(),
            "a third waits for one to end"
        );
        assert!(
            super::seller_turn("unit#8").is_ok(),
            "another seller is not held"
        );
        drop(a);
        let _c = super::seller_turn("unit#7").unwrap();
        drop(b);
    }

    use super::*;

    fn label(payload: &str) -> LabelText {
        LabelText {
            qr_payload: payload.into(),
            product: "Màn tuyn cao cấp 1m6 × 2m viền hoa".into(),
            village: "Làng Phú Đôi, Phú Xuyên, Hà Nội".into(),
            batch: "PD-241130-03".into(),
            produced: "30/11/2024".into(),
            price: "Giá cộng đồng: 180.000 ₫ / chiếc".into(),
        }
    }

    #[test]
    fn qr_at_least_20mm_and_text_inside_every_sheet() {
        let long = format!(
            "https://cholang.example.vn/01/08936042000123/10/{}",
            "A".repeat(20)
        );
        for sheet in Sheet::ALL {
            let (w, h) = sheet.label_mm();
            let laid = lay_out(sheet, &label(&long)).unwrap();
            assert!(
                laid.qr_symbol_mm >= MIN_QR_MM,
                "{sheet:?} {}",
                laid.qr_symbol_mm
            );
            // Ink at least 4 mm from every edge (the outer labels touch the paper's edge).
            let e = EDGE_MM - 0.01;
            for (x, y, rw, rh) in &laid.qr_rects {
                assert!(
                    *x >= e && *y >= e && x + rw <= w - e && y + rh <= h - e,
                    "{sheet:?}: QR at {x},{y}"
                );
            }
            for (x, y, size, text) in &laid.lines {
                let top = y - size * (1.2 - 0.24) / PT_PER_MM;
                assert!(*y <= h - e && top >= e - 0.5, "{sheet:?} {text} at {y}");
                assert!(
                    *x >= e && x + text_mm(text, *size) <= w - e,
                    "{sheet:?} {text}"
                );
            }
            let all: String = laid
                .lines
                .iter()
                .map(|l| l.3.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            assert!(all.contains("₫") && all.contains("Đôi"), "{all}");
            assert!(all.contains("Quét mã để xem ai làm ra"), "{all}");
        }
    }

    #[test]
    fn counts_and_sheets_are_checked() {
        assert!(Sheet::parse("a5").is_err());
        assert_eq!(Sheet::parse("").unwrap(), Sheet::A4x24);
        assert!(pdf(Sheet::A4x24, &label("x"), 0).is_err());
        assert!(pdf(Sheet::A4x24, &label("x"), MAX_COUNT + 1).is_err());
        let bytes = pdf(Sheet::Roll50x30, &label("https://a.vn/truy-xuat/PD-1"), 2).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
    }
}
