//! Reading uploaded images: the real format from the bytes (never the name or Content-Type), the
//! dimensions, and the large (720 px) and thumbnail (198 px) renditions. CPU-heavy: callers run
//! [`process`] on a blocking thread.
//!
//! Decompression bombs are refused from the header, before decoding: more than the configured number
//! of pixels. The decoder's allocations are limited to match ([`alloc_limit`]): the pixel cap at the
//! widest pixel the decoders produce (16-bit RGBA, 8 bytes), so one rendering holds at most the file
//! and that much.

use std::io::Cursor;

use duet_core::media::RenditionKind;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The widest decoded pixel: 16-bit RGBA.
const MAX_BYTES_PER_PIXEL: u64 = 8;
/// The decoder's allocation limit never goes below this (decoders need buffers of their own, whatever
/// the image) nor above [`MAX_ALLOC`].
const MIN_ALLOC: u64 = 16 * 1024 * 1024;
/// The most memory a decoder may allocate, however many pixels are allowed.
const MAX_ALLOC: u64 = 1024 * 1024 * 1024;

/// The decoder's allocation limit for images of at most `max_pixels` pixels.
pub fn alloc_limit(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL).clamp(MIN_ALLOC, MAX_ALLOC)
}
/// JPEG quality of renditions of JPEG originals.
const JPEG_QUALITY: u8 = 85;

/// Why an upload is not a usable image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not an image in a supported format (JPEG, PNG, GIF)")]
    NotAnImage,
    #[error("the image is {width}x{height}, more than {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
}

/// A rendition to store: its size, and its encoded bytes (`None`: the original is small enough).
pub struct Rendered {
    pub kind: RenditionKind,
    pub width: u32,
    pub height: u32,
    pub bytes: Option<Vec<u8>>,
}

/// What was read from an image.
pub struct Processed {
    /// Tencent's `ImageFormat`: JPG=1, GIF=2, PNG=3, BMP=4, other=255.
    pub format: u8,
    pub width: u32,
    pub height: u32,
    /// Large, then thumbnail.
    pub renditions: Vec<Rendered>,
}

/// Tencent's `ImageFormat` number of a format.
fn format_code(f: ImageFormat) -> u8 {
    match f {
        ImageFormat::Jpeg => 1,
        ImageFormat::Gif => 2,
        ImageFormat::Png => 3,
        ImageFormat::Bmp => 4,
        _ => 255,
    }
}

/// The MIME type of an image of Tencent format `code`.
pub fn mime(code: u8) -> &'static str {
    match code {
        1 => "image/jpeg",
        2 => "image/gif",
        3 => "image/png",
        4 => "image/bmp",
        _ => "application/octet-stream",
    }
}

/// The MIME type of the encoded renditions of an image of format `code`: JPEG for JPEG, PNG otherwise
/// (keeping transparency).
pub fn rendition_mime(code: u8) -> &'static str {
    if code == 1 { "image/jpeg" } else { "image/png" }
}

/// Reads `bytes` as an image and renders the large and thumbnail sizes.
pub fn process(bytes: &[u8], max_pixels: u64) -> Result<Processed, ImageError> {
    let reader = || -> Result<ImageReader<Cursor<&[u8]>>, ImageError> {
        let mut r = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|_| ImageError::NotAnImage)?;
        let mut limits = Limits::default();
        limits.max_alloc = Some(alloc_limit(max_pixels));
        r.limits(limits);
        Ok(r)
    };
    let first = reader()?;
    let format = first.format().ok_or(ImageError::NotAnImage)?;
    let (width, height) = first.into_dimensions().map_err(|_| ImageError::NotAnImage)?;
    if width == 0 || height == 0 {
        return Err(ImageError::NotAnImage);
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooManyPixels { width, height, max: max_pixels });
    }
    let image = reader()?.decode().map_err(|e| {
        tracing::debug!(error = %e, "image decoding failed");
        ImageError::NotAnImage
    })?;
    let code = format_code(format);
    let mut renditions = Vec::new();
    // The thumbnail is scaled from the large rendition: same result, a fraction of the work.
    let mut source = image;
    for kind in [RenditionKind::Large, RenditionKind::Thumb] {
        let (w, h) = kind.fit(width, height);
        if (w, h) == (width, height) {
            renditions.push(Rendered { kind, width, height, bytes: None });
            continue;
        }
        let scaled = source.resize_exact(w, h, FilterType::Triangle);
        let bytes = encode(&scaled, code)?;
        renditions.push(Rendered { kind, width: w, height: h, bytes: Some(bytes) });
        source = scaled;
    }
    Ok(Processed { format: code, width, height, renditions })
}

fn encode(image: &DynamicImage, code: u8) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let result = if code == 1 {
        let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY))
    } else {
        image.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
    };
    result.map_err(|e| {
        tracing::warn!(error = %e, "encoding a rendition failed");
        ImageError::NotAnImage
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7])));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn small_images_keep_their_size_and_bombs_are_refused_from_the_header() {
        let p = process(&png(100, 50), 1_000_000).unwrap();
        assert_eq!((p.format, p.width, p.height), (3, 100, 50));
        assert!(p.renditions.iter().all(|r| r.bytes.is_none() && (r.width, r.height) == (100, 50)));

        assert!(matches!(process(&png(100, 50), 4_999), Err(ImageError::TooManyPixels { .. })));
        // A GIF header claiming 25120x29813: refused by the pixel cap, or by the decoder's allocation limit.
        let bomb = b"GIF89a but not really";
        assert!(matches!(process(bomb, 1_000_000), Err(ImageError::TooManyPixels { .. })));
        assert!(matches!(process(bomb, u64::MAX), Err(ImageError::NotAnImage)));
        assert!(matches!(process(b"hello world", 1_000_000), Err(ImageError::NotAnImage)));

        // The decoder's limit follows the pixel cap: the default's 25 million at 8 bytes a pixel.
        assert_eq!(alloc_limit(25_000_000), 200_000_000);
        assert_eq!(alloc_limit(1), MIN_ALLOC);
        assert_eq!(alloc_limit(u64::MAX), MAX_ALLOC);
    }
}
