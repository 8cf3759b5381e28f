//! Product photos: only JPEG, PNG or WebP, size-limited, decoded and re-encoded (which also
//! drops any metadata such as GPS position) into a display image and a thumbnail.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, ImageReader, Limits};

use crate::error::AppError;

pub const MAX_PHOTOS: i64 = 8;
const FULL_SIDE: u32 = 1600;
const THUMB_SIDE: u32 = 480;
/// The most pixels a photo may declare: 24 megapixels (6000 × 4000, more than a phone
/// camera's usual 12). Checked from the header before decoding: a small PNG can declare
/// 10000 × 8000 and decode to a quarter of a gigabyte.
pub const MAX_PIXELS: u64 = 24_000_000;
/// What decoding may allocate at most (24 MP as RGBA is 96 MB).
const MAX_DECODE_ALLOC: u64 = 100 * 1024 * 1024;

/// Photos decoded at once in this process (2), with a short queue.
pub static DECODING: crate::limits::Slots =
    crate::limits::Slots::new(2, 16, std::time::Duration::from_secs(20));

pub struct Processed {
    pub full_jpeg: Vec<u8>,
    pub thumb_jpeg: Vec<u8>,
}

fn bad(msg: &str) -> AppError {
    AppError::field("photo", msg)
}

/// Decode and re-encode an upload. CPU work: call from `spawn_blocking`.
pub fn process(bytes: &[u8], max_bytes: usize) -> Result<Processed, AppError> {
    if bytes.is_empty() {
        return Err(bad("vui lòng chọn một ảnh"));
    }
    if bytes.len() > max_bytes {
        return Err(bad(&format!(
            "ảnh lớn quá {} MB",
            max_bytes / (1024 * 1024)
        )));
    }
    let format = image::guess_format(bytes).map_err(|_| {
        bad("tệp này không phải ảnh chụp; hãy chọn ảnh từ điện thoại (JPEG, PNG hoặc WebP)")
    })?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(bad(
            "tệp này không phải ảnh chụp; hãy chọn ảnh từ điện thoại (JPEG, PNG hoặc WebP)",
        ));
    }
    // Read the declared size from the header alone, before any pixel is decoded.
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|_| bad("không đọc được ảnh (tệp hỏng)"))?;
    check_pixels(w, h)?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|_| bad("không đọc được ảnh (tệp hỏng hoặc quá lớn)"))?;
    // Shrink by area averaging first (integer work, no buffer beyond the result), then make
    // the thumbnail from the shrunk image: a filtered resize of a 24 MP photo would build a
    // floating-point copy of it (~100 MB) per upload.
    let full = if img.width() > FULL_SIDE || img.height() > FULL_SIDE {
        let small = img.thumbnail(FULL_SIDE, FULL_SIDE);
        drop(img);
        small
    } else {
        img
    };
    let thumb = full.resize(
        THUMB_SIDE,
        THUMB_SIDE,
        image::imageops::FilterType::Triangle,
    );
    Ok(Processed {
        full_jpeg: encode_jpeg(&full)?,
        thumb_jpeg: encode_jpeg(&thumb)?,
    })
}

/// Refuse a photo whose declared size is beyond [`MAX_PIXELS`].
pub fn check_pixels(w: u32, h: u32) -> Result<(), AppError> {
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(bad(&format!(
            "Ảnh {w} × {h} điểm ảnh quá lớn; tối đa {} triệu điểm ảnh (ví dụ 6000 × 4000)",
            MAX_PIXELS / 1_000_000
        )));
    }
    Ok(())
}

fn encode_jpeg(img: &image::DynamicImage) -> Result<Vec<u8>, AppError> {
    let rgb = img.to_rgb8();
    let mut out = Vec::new();
    let mut enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
    enc.encode_image(&rgb)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("jpeg encode: {e}")))?;
    Ok(out)
}

/// The picture a link preview shows (Open Graph, 1200 × 630): a stored photo cropped to
/// fill, or, without one, a plain picture in Chợ Làng's colours. CPU work: call from
/// `spawn_blocking`.
pub fn share_image(full_jpeg: Option<&[u8]>) -> Result<Vec<u8>, AppError> {
    let img = match full_jpeg {
        Some(bytes) => image::load_from_memory_with_format(bytes, ImageFormat::Jpeg)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored photo: {e}")))?
            .resize_to_fill(SHARE_W, SHARE_H, image::imageops::FilterType::Triangle),
        None => {
            let mut canvas =
                image::RgbImage::from_pixel(SHARE_W, SHARE_H, image::Rgb([47, 111, 62]));
            for y in SHARE_H * 2 / 3..SHARE_H {
                for x in 0..SHARE_W {
                    canvas.put_pixel(x, y, image::Rgb([233, 196, 106]));
                }
            }
            image::DynamicImage::ImageRgb8(canvas)
        }
    };
    encode_jpeg(&img)
}

/// Open Graph's recommended size.
pub const SHARE_W: u32 = 1200;
pub const SHARE_H: u32 = 630;

/// A stored full photo's file name (what `save` makes): 32 hex digits and `.jpg`.
pub fn is_stored_name(name: &str) -> bool {
    name.strip_suffix(".jpg")
        .is_some_and(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Store both images under the photos dir with fresh random names; returns (full, thumb).
pub async fn save(dir: &Path, p: &Processed) -> anyhow::Result<(String, String)> {
    tokio::fs::create_dir_all(dir).await?;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let full = format!("{id}.jpg");
    let thumb = format!("{id}-thumb.jpg");
    tokio::fs::write(dir.join(&full), &p.full_jpeg).await?;
    tokio::fs::write(dir.join(&thumb), &p.thumb_jpeg).await?;
    Ok((full, thumb))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([200, 30, 30]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn reencodes_and_shrinks() {
        let p = process(&png(2000, 1000), 5 << 20).unwrap();
        let full = image::load_from_memory(&p.full_jpeg).unwrap();
        let thumb = image::load_from_memory(&p.thumb_jpeg).unwrap();
        assert_eq!((full.width(), full.height()), (1600, 800));
        assert_eq!(thumb.width(), 480);
        assert_eq!(
            image::guess_format(&p.full_jpeg).unwrap(),
            ImageFormat::Jpeg
        );
    }

    /// A valid grey PNG of `w` × `h` black pixels: a small file that decodes to `w × h`
    /// bytes or more (the "decompression bomb").
    fn bomb_png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().unwrap();
        writer
            .write_image_data(&vec![0u8; w as usize * h as usize])
            .unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn refuses_too_many_pixels_before_decoding() {
        let bytes = bomb_png(7_000, 5_000);
        assert!(bytes.len() < 1_000_000, "{} bytes", bytes.len());
        let err = process(&bytes, 5 << 20).err().expect("refused");
        let AppError::Validation(f) = err else {
            panic!("expected a field error")
        };
        assert!(f.get("photo").unwrap().contains("7000 × 5000"), "{f:?}");
        assert!(check_pixels(6000, 4000).is_ok());
        assert!(check_pixels(6001, 4000).is_err());
    }

    #[test]
    fn refuses_other_files() {
        assert!(process(b"GIF89a....", 5 << 20).is_err());
        assert!(process(b"<svg xmlns='http://www.w3.org/2000/svg'/>", 5 << 20).is_err());
        assert!(process(&png(10, 10), 10).is_err());
        // a PNG signature with garbage behind it
        let mut broken = png(10, 10);
        broken.truncate(30);
        assert!(process(&broken, 5 << 20).is_err());
    }
}
