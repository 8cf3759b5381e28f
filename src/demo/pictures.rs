//! Pictures for the demo market, drawn by this code (so they ship under the project's own
//! licence): one per product, a pattern for its kind of goods — the mesh of a mosquito net,
//! wood grain, bolts on steel, mother-of-pearl on black lacquer, gold on red lacquer, woven
//! cloth, basketwork, grains of rice or longan, honey — in colours varied by the product's
//! name. They go through the same photo pipeline as a seller's upload (re-encoded, thumbnail).

use image::{Rgb, RgbImage};

use crate::db::Db;

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;

/// A small deterministic generator (splitmix64), seeded by the product's name.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}

fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn px(c: [f32; 3]) -> Rgb<u8> {
    Rgb([
        c[0].clamp(0.0, 255.0) as u8,
        c[1].clamp(0.0, 255.0) as u8,
        c[2].clamp(0.0, 255.0) as u8,
    ])
}

/// A colour of the given hue (degrees), saturation and lightness (0..1).
fn hsl(h: f32, s: f32, l: f32) -> [f32; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let hp = (h.rem_euclid(360.0)) / 60.0;
    let x = c * (1.0 - (hp % 2.0 - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

/// Round things scattered over the picture: (x, y, radius, shade).
fn scatter(rng: &mut Rng, n: usize, r: (f32, f32)) -> Vec<(f32, f32, f32, f32)> {
    (0..n)
        .map(|_| {
            (
                rng.range(0.0, WIDTH as f32),
                rng.range(0.0, HEIGHT as f32),
                rng.range(r.0, r.1),
                rng.unit(),
            )
        })
        .collect()
}

/// The picture of a product of this category (the village's name for it) and name.
pub fn picture(category: &str, name: &str) -> RgbImage {
    let mut rng = Rng(seed_of(name));
    let hue = rng.range(0.0, 360.0);
    let kind = crate::domain::text::fold_text(category);
    let (w, h) = (WIDTH as f32, HEIGHT as f32);
    let mut img = RgbImage::new(WIDTH, HEIGHT);
    let dots = scatter(&mut rng, 70, (10.0, 26.0));
    let phase = rng.range(0.0, std::f32::consts::TAU);
    let inside = |x: f32, y: f32, d: &[(f32, f32, f32, f32)]| {
        d.iter()
            .find(|(cx, cy, r, _)| (x - cx).powi(2) + (y - cy).powi(2) < r * r)
            .copied()
    };
    for (xi, yi, p) in img.enumerate_pixels_mut() {
        let (x, y) = (xi as f32, yi as f32);
        let c = if kind.contains("man") {
            // A net hung from its frame: a soft room, the canopy, and its fine mesh.
            let room = mix(hsl(hue, 0.35, 0.86), hsl(hue, 0.3, 0.7), y / h);
            let top = 0.18 * h;
            let half = 0.22 * w + (y - top).max(0.0) * 0.45;
            let in_net = y > top && (x - w / 2.0).abs() < half && y < 0.9 * h;
            if in_net {
                let mesh = (x + y) % 9.0 < 1.2 || (x - y).rem_euclid(9.0) < 1.2;
                let base = mix(room, [250.0, 250.0, 252.0], 0.55);
                if mesh {
                    mix(base, hsl(hue + 180.0, 0.25, 0.45), 0.35)
                } else {
                    base
                }
            } else {
                room
            }
        } else if kind.contains("go") {
            // Wood grain: wavy bands and knots.
            let wave = (y / 7.0 + 3.0 * (x / 55.0 + phase).sin() + (x / 13.0).sin() * 0.6).sin();
            let base = mix([120.0, 74.0, 40.0], [186.0, 134.0, 82.0], 0.5 + 0.5 * wave);
            match inside(x, y, &dots[..3]) {
                Some((cx, cy, r, _)) => {
                    let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() / r;
                    mix([80.0, 46.0, 24.0], base, (d * 6.0).sin().abs())
                }
                None => base,
            }
        } else if kind.contains("co khi") {
            // Brushed steel with bolts.
            let base = mix(
                [150.0, 160.0, 170.0],
                [210.0, 216.0, 222.0],
                (x / w + (y * 3.1).sin() * 0.02).fract(),
            );
            let gx = (x % 160.0) - 80.0;
            let gy = (y % 160.0) - 80.0;
            let r = (gx * gx + gy * gy).sqrt();
            if r < 24.0 {
                mix([90.0, 96.0, 104.0], [200.0, 205.0, 210.0], 1.0 - r / 24.0)
            } else {
                base
            }
        } else if kind.contains("kham trai") {
            // Mother-of-pearl pieces on black lacquer.
            match inside(x, y, &dots) {
                Some((_, _, _, s)) => hsl(
                    hue + 120.0 * s + x * 0.3,
                    0.35,
                    0.78 + 0.1 * (y / 9.0).sin(),
                ),
                None => mix([14.0, 12.0, 16.0], [40.0, 30.0, 36.0], y / h),
            }
        } else if kind.contains("son mai") {
            // Gold leaf on red lacquer.
            match inside(x, y, &dots[..40]) {
                Some((_, _, _, s)) => mix([196.0, 152.0, 60.0], [240.0, 210.0, 120.0], s),
                None => mix([120.0, 16.0, 20.0], [60.0, 8.0, 10.0], y / h),
            }
        } else if kind.contains("may mac") || kind.contains("theu") {
            // Woven cloth: a check and a fine twill.
            let check = ((x / 40.0) as i32 + (y / 40.0) as i32) % 2 == 0;
            let base = if check {
                hsl(hue, 0.35, 0.35)
            } else {
                hsl(hue, 0.3, 0.45)
            };
            if (x + y) % 6.0 < 1.5 {
                mix(base, [255.0, 255.0, 255.0], 0.12)
            } else {
                base
            }
        } else if kind.contains("may tre") || kind.contains("coi") || kind.contains("beo") {
            // Basketwork: blocks woven one way, then the other.
            let (bx, by) = ((x / 48.0) as i32, (y / 48.0) as i32);
            let along = if (bx + by) % 2 == 0 {
                y % 12.0
            } else {
                x % 12.0
            };
            mix(
                [150.0, 112.0, 60.0],
                [214.0, 178.0, 112.0],
                (along / 12.0 * std::f32::consts::PI).sin(),
            )
        } else if kind.contains("mat ong") || name.to_lowercase().contains("mật ong") {
            // Honey: amber light through glass.
            mix(
                [250.0, 196.0, 60.0],
                [168.0, 92.0, 10.0],
                ((x - w / 2.0).abs() / w + y / h) * 0.8,
            )
        } else if kind.contains("nong san") || kind.contains("thuc pham") {
            // Grains (rice, longan, beans) on a woven tray.
            match inside(x, y, &dots) {
                Some((cx, cy, r, s)) => {
                    let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() / r;
                    mix(
                        hsl(35.0 + 20.0 * s + hue * 0.05, 0.55, 0.72),
                        hsl(30.0, 0.5, 0.4),
                        d * d,
                    )
                }
                None => mix(
                    [200.0, 170.0, 120.0],
                    [170.0, 136.0, 90.0],
                    ((x + y) % 14.0) / 14.0,
                ),
            }
        } else {
            mix(
                hsl(hue, 0.4, 0.75),
                hsl(hue + 40.0, 0.4, 0.5),
                (x + y) / (w + h),
            )
        };
        // A soft light from the top left, the same on every picture.
        let light = 1.06 - 0.12 * ((x / w + y / h) / 2.0);
        *p = px([c[0] * light, c[1] * light, c[2] * light]);
    }
    img
}

/// Give every product of the market without a photo its drawn picture. Returns how many.
pub async fn add_missing(db: &Db, photos_dir: &std::path::Path) -> anyhow::Result<usize> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT p.id, p.category, p.name FROM products p
         WHERE NOT EXISTS (SELECT 1 FROM product_photos f WHERE f.product_id = p.id) ORDER BY p.id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut added = 0;
    for (id, category, name) in rows {
        let processed = tokio::task::spawn_blocking(move || {
            let img = picture(&category, &name);
            let mut png = std::io::Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png)?;
            crate::catalog::photos::process(png.get_ref(), usize::MAX)
                .map_err(|e| anyhow::anyhow!("demo picture: {e}"))
        })
        .await??;
        let (full, thumb) = crate::catalog::photos::save(photos_dir, &processed).await?;
        crate::catalog::store::add_photo(db, crate::catalog::ProductId(id), &full, &thumb)
            .await
            .map_err(|e| anyhow::anyhow!("demo picture: {e:?}"))?;
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_goods_has_its_own_picture_and_a_name_its_colours() {
        let kinds = [
            "Màn tuyn",
            "Đồ gỗ",
            "Cơ khí",
            "Khảm trai",
            "Sơn mài",
            "May mặc",
            "Mây tre đan",
            "Nông sản OCOP",
        ];
        let pics: Vec<RgbImage> = kinds.iter().map(|k| picture(k, "Sản phẩm")).collect();
        for (i, a) in pics.iter().enumerate() {
            assert_eq!(a.dimensions(), (WIDTH, HEIGHT));
            for b in &pics[i + 1..] {
                assert_ne!(a.as_raw(), b.as_raw(), "{}", kinds[i]);
            }
            // Not one flat colour.
            let first = a.get_pixel(0, 0);
            assert!(a.pixels().filter(|p| *p != first).count() > 10_000);
        }
        assert_eq!(
            picture("Màn tuyn", "Màn 1m6").as_raw(),
            picture("Màn tuyn", "Màn 1m6").as_raw(),
            "the same every time"
        );
        assert_ne!(
            picture("Màn tuyn", "Màn 1m6").as_raw(),
            picture("Màn tuyn", "Màn 1m8").as_raw()
        );
    }
}
