//! Reading uploaded images: the real format from the bytes (never the name or Content-Type), the
//! dimensions, and the large (720 px) and thumbnail (198 px) renditions. CPU-heavy: callers (the
//! server's media endpoint) run [`probe`] and [`process`] on a blocking thread. A crate of its own, with
//! no I/O but the reader it is given, so that its fuzz target (`fuzz/fuzz_targets/media_probe.rs`)
//! builds without the server.
//!
//! Rendering is the one step that holds an upload in memory, and it has a budget (`docs/security.md`,
//! "Media: image rendering"). [`probe`] reads only the header, streamed from the stored file, and
//! refuses images over the pixel cap or more extreme than 1:[`MAX_ASPECT`]; [`Budget::charge`] is then
//! an upper bound of what rendering that image holds: the file (three times for JPEG: the decoder's
//! copy and its metadata), the pixels decoded at 8 bits a channel, a JPEG's coefficients when it keeps
//! them all (progressive or one scan per component), the decoders' rows, and the renditions. The
//! caller reserves the charge from the [`Budget`] before the file is read, and [`process`] keeps to it:
//! PNG ancillary chunks that inflate (ICC profiles, text) are ignored and 16-bit channels stripped to 8
//! as rows are decoded, every decoder is held to the header's dimensions, and renditions are scaled
//! by integer box averaging into the rendition's own buffer (no floating-point copy of the image).

use std::io::{Cursor, Read};

use duet_core::media::RenditionKind;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// The most a side may exceed the other: 1:100 and beyond is a strip, not a picture (a phone's
/// scrolling screenshot is about 1:20, a panorama 1:10), and its renditions would be lines. With the
/// pixel cap it also bounds a row, what decoders hold per column (25 million pixels: 50 000 wide).
pub const MAX_ASPECT: u64 = 100;
/// The budget's bytes per allowed pixel: rendering any format up to the pixel cap fits (8-bit RGBA is 4,
/// a GIF whose first frame is not the screen holds two such buffers, a progressive JPEG adds its
/// coefficients) with room for its file.
const BUDGET_BYTES_PER_PIXEL: u64 = 8;
/// What every rendering may hold besides the file, its pixels and its rows: the renditions (the large
/// one is at most 720x720 RGBA, 2 MB, and is encoded), the decoders' tables and buffers, the PNG
/// decoder's ancillary chunks ([`PNG_CHUNK_LIMIT`]).
const FIXED: u64 = 16 * 1024 * 1024;
/// What decoders hold per column of the image (rows being unfiltered, a JPEG's row of MCUs of up to 32
/// lines, 4 components of 16-bit samples).
const ROW_BYTES_PER_COLUMN: u64 = 256;
/// The most the PNG decoder may buffer of its chunks (palette, `eXIf`, …): ICC profiles and text are
/// skipped unread, so nothing it buffers is ever inflated.
const PNG_CHUNK_LIMIT: usize = 2 * 1024 * 1024;
/// JPEG quality of renditions of JPEG originals.
const JPEG_QUALITY: u8 = 85;

/// Why an upload is not a usable image.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not an image in a supported format (JPEG, PNG, GIF)")]
    NotAnImage,
    #[error("the image is {width}x{height}, more than {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the image is {width}x{height}, one side more than {MAX_ASPECT} times the other")]
    TooExtreme { width: u32, height: u32 },
    #[error("rendering the image would take {} MiB, more than the budget of {} MiB", mib(*.needs), mib(*.budget))]
    OverBudget { needs: u64, budget: u64 },
    #[error("the image holds more than its decoder may allocate")]
    DecoderLimit,
}

fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

/// What an image's header says, read by [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// PNG, JPEG or GIF.
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
    /// What decoding holds besides the file and the renditions: the pixels, the decoder's working
    /// memory, its rows.
    decoding: u64,
    /// How many copies of the file rendering holds.
    file_copies: u64,
}

/// The memory all renderings together may hold, in bytes: what rendering the largest image allowed
/// takes, `max_pixels` × [`BUDGET_BYTES_PER_PIXEL`] + the largest image file + [`FIXED`] + the rows
/// of the widest image allowed (`√(max_pixels × MAX_ASPECT)` columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max_pixels: u64,
    pub total: u64,
}

impl Budget {
    /// The budget for images of at most `max_pixels` pixels and `max_file` bytes.
    pub fn new(max_pixels: u64, max_file: u64) -> Budget {
        let widest = max_pixels.saturating_mul(MAX_ASPECT).isqrt();
        let total = max_pixels
            .saturating_mul(BUDGET_BYTES_PER_PIXEL)
            .saturating_add(max_file)
            .saturating_add(FIXED)
            .saturating_add(widest.saturating_mul(ROW_BYTES_PER_COLUMN));
        Budget { max_pixels, total }
    }

    /// What rendering the image with this header, in a file of `file_len` bytes, holds at most: to
    /// reserve before the file is read. Refused when more than the whole budget.
    pub fn charge(&self, header: &Header, file_len: u64) -> Result<u64, ImageError> {
        let needs = file_len.saturating_mul(header.file_copies).saturating_add(header.decoding).saturating_add(FIXED);
        if needs > self.total {
            return Err(ImageError::OverBudget { needs, budget: self.total });
        }
        Ok(needs)
    }
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

fn read_array<const N: usize>(r: &mut impl Read) -> Result<[u8; N], ImageError> {
    let mut buf = [0; N];
    r.read_exact(&mut buf).map_err(|_| ImageError::NotAnImage)?;
    Ok(buf)
}

/// Reads the header of an image from `r` (only as far as the header: a JPEG's segments before its
/// frame header are skipped, never held) and checks its dimensions: at most `max_pixels` pixels, no
/// side more than [`MAX_ASPECT`] times the other.
pub fn probe(r: impl Read, max_pixels: u64) -> Result<Header, ImageError> {
    let mut r = std::io::BufReader::with_capacity(8 * 1024, r);
    let magic: [u8; 6] = read_array(&mut r)?;
    let header = if magic == *b"\x89PNG\r\n" {
        // The rest of the signature, then IHDR, which must come first.
        let ihdr: [u8; 2 + 8 + 13] = read_array(&mut r)?;
        if ihdr[2..10] != *b"\0\0\0\x0dIHDR" {
            return Err(ImageError::NotAnImage);
        }
        let width = u32::from_be_bytes([ihdr[10], ihdr[11], ihdr[12], ihdr[13]]);
        let height = u32::from_be_bytes([ihdr[14], ihdr[15], ihdr[16], ihdr[17]]);
        let pixels = u64::from(width) * u64::from(height);
        // Decoded as 8-bit RGBA at most. Saturating: the dimensions are not checked yet, and 2^32 − 1
        // squared is over a quarter of u64 (such a header is refused below).
        let decoding = pixels.saturating_mul(4).saturating_add(rows(width));
        Header { format: ImageFormat::Png, width, height, decoding, file_copies: 1 }
    } else if magic == *b"GIF87a" || magic == *b"GIF89a" {
        let screen: [u8; 4] = read_array(&mut r)?;
        let width = u32::from(u16::from_le_bytes([screen[0], screen[1]]));
        let height = u32::from(u16::from_le_bytes([screen[2], screen[3]]));
        let pixels = u64::from(width) * u64::from(height);
        // The screen as RGBA, and the first frame's own buffer when it is not the screen: the decoder
        // is allowed no more than the screen's size for it.
        let decoding = pixels * 8 + rows(width);
        Header { format: ImageFormat::Gif, width, height, decoding, file_copies: 1 }
    } else if magic[..3] == [0xFF, 0xD8, 0xFF] {
        let mut r = Cursor::new(magic[2..].to_vec()).chain(r);
        jpeg_header(&mut r)?
    } else {
        return Err(ImageError::NotAnImage);
    };
    let (width, height) = (header.width, header.height);
    if width == 0 || height == 0 {
        return Err(ImageError::NotAnImage);
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooManyPixels { width, height, max: max_pixels });
    }
    let (long, short) = (width.max(height), width.min(height));
    if u64::from(long) > u64::from(short) * MAX_ASPECT {
        return Err(ImageError::TooExtreme { width, height });
    }
    Ok(header)
}

/// What decoders hold for the rows of an image `width` wide.
fn rows(width: u32) -> u64 {
    u64::from(width) * ROW_BYTES_PER_COLUMN
}

/// What a JPEG's frame header (SOF) says.
struct Frame {
    /// Not baseline nor extended sequential (progressive, lossless…): all coefficients are kept.
    whole: bool,
    width: u32,
    height: u32,
    /// Each component's horizontal and vertical sampling factors.
    sampling: Vec<(u64, u64)>,
}

/// A JPEG's header: the segments from the first marker to the frame header (SOF) and the first scan
/// header (SOS), skipping the others. Refused: no frame, two frames, components sampled oddly.
fn jpeg_header(r: &mut impl Read) -> Result<Header, ImageError> {
    let mut frame: Option<Frame> = None;
    loop {
        // A marker: 0xFF, maybe fill bytes (0xFF), the marker's code.
        let [mut code] = read_array(r)?;
        if code != 0xFF {
            return Err(ImageError::NotAnImage);
        }
        while code == 0xFF {
            [code] = read_array(r)?;
        }
        match code {
            // Markers without a segment.
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 => return Err(ImageError::NotAnImage),
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes(read_array(r)?));
        let Some(len) = len.checked_sub(2) else { return Err(ImageError::NotAnImage) };
        match code {
            // Frame headers (0xC4 is DHT, 0xC8 reserved, 0xCC DAC).
            0xC0..=0xCF if !matches!(code, 0xC4 | 0xC8 | 0xCC) => {
                if frame.is_some() || len < 6 {
                    return Err(ImageError::NotAnImage);
                }
                let mut segment = vec![0; len];
                r.read_exact(&mut segment).map_err(|_| ImageError::NotAnImage)?;
                let height = u32::from(u16::from_be_bytes([segment[1], segment[2]]));
                let width = u32::from(u16::from_be_bytes([segment[3], segment[4]]));
                let n = usize::from(segment[5]);
                if n == 0 || n > 4 || segment.len() < 6 + 3 * n {
                    return Err(ImageError::NotAnImage);
                }
                let mut sampling = Vec::with_capacity(n);
                for c in segment[6..6 + 3 * n].chunks(3) {
                    let (h, v) = (u64::from(c[1] >> 4), u64::from(c[1] & 0x0F));
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                        return Err(ImageError::NotAnImage);
                    }
                    sampling.push((h, v));
                }
                // Only baseline and extended sequential frames are decoded one row of MCUs at a time.
                frame = Some(Frame { whole: !matches!(code, 0xC0 | 0xC1), width, height, sampling });
            }
            0xDA => {
                let Some(frame) = frame else { return Err(ImageError::NotAnImage) };
                let [scanned] = read_array(r)?;
                // All coefficients are kept when the first scan has fewer than all components.
                let whole = frame.whole || usize::from(scanned) < frame.sampling.len();
                return Ok(jpeg_charge(frame.width, frame.height, whole, &frame.sampling));
            }
            _ => {
                let skipped = std::io::copy(&mut r.take(len as u64), &mut std::io::sink()).unwrap_or(0);
                if skipped < len as u64 {
                    return Err(ImageError::NotAnImage);
                }
            }
        }
    }
}

/// What decoding a JPEG holds: the pixels (1, 3 or 4 bytes), its coefficients when it keeps them all (2
/// bytes per sample of each component, over the image padded to whole MCUs), its rows.
fn jpeg_charge(width: u32, height: u32, whole: bool, sampling: &[(u64, u64)]) -> Header {
    let bpp = match sampling.len() {
        1 => 1,
        3 => 3,
        _ => 4,
    };
    let pixels = u64::from(width) * u64::from(height);
    let mut decoding = pixels * bpp + rows(width);
    if whole {
        let hmax = sampling.iter().map(|s| s.0).max().unwrap_or(1);
        let vmax = sampling.iter().map(|s| s.1).max().unwrap_or(1);
        let padded_w = u64::from(width).next_multiple_of(8 * hmax);
        let padded_h = u64::from(height).next_multiple_of(8 * vmax);
        for (h, v) in sampling {
            decoding += 2 * (padded_w * h / hmax) * (padded_h * v / vmax);
        }
    }
    // The file itself, the decoder's copy of it, and the metadata it keeps (ICC, EXIF, XMP: at most
    // the file again).
    Header { format: ImageFormat::Jpeg, width, height, decoding, file_copies: 3 }
}

/// Decodes the image in `bytes`, whose header is `header` (from [`probe`]), and renders the large and
/// thumbnail sizes, holding at most the header's charge ([`Budget::charge`]).
pub fn process(bytes: &[u8], header: &Header) -> Result<Processed, ImageError> {
    let image = match header.format {
        ImageFormat::Png => decode_png(bytes, header)?,
        _ => decode(bytes, header)?,
    };
    let (width, height) = (image.width(), image.height());
    if (width, height) != (header.width, header.height) {
        return Err(ImageError::NotAnImage);
    }
    let code = format_code(header.format);
    let mut renditions = Vec::new();
    // The thumbnail is scaled from the large rendition: same result, a fraction of the work.
    let mut source = image;
    for kind in [RenditionKind::Large, RenditionKind::Thumb] {
        let (w, h) = kind.fit(width, height);
        if (w, h) == (width, height) {
            renditions.push(Rendered { kind, width, height, bytes: None });
            continue;
        }
        // Box averaging in integers, straight into the rendition's buffer.
        let scaled = source.thumbnail_exact(w, h);
        let bytes = encode(&scaled, code)?;
        renditions.push(Rendered { kind, width: w, height: h, bytes: Some(bytes) });
        source = scaled;
    }
    Ok(Processed { format: code, width, height, renditions })
}

/// A PNG, decoded to 8 bits a channel (16-bit channels stripped as rows are decoded, palettes and
/// low bit depths expanded), ignoring the chunks that inflate (ICC profiles, text).
fn decode_png(bytes: &[u8], header: &Header) -> Result<DynamicImage, ImageError> {
    let failed = |e: png::DecodingError| match e {
        png::DecodingError::LimitsExceeded => ImageError::DecoderLimit,
        e => {
            tracing::debug!(error = %e, "PNG decoding failed");
            ImageError::NotAnImage
        }
    };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: PNG_CHUNK_LIMIT });
    decoder.set_ignore_iccp_chunk(true);
    decoder.set_ignore_text_chunk(true);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(failed)?;
    if reader.info().size() != (header.width, header.height) {
        return Err(ImageError::NotAnImage);
    }
    let size = reader.output_buffer_size().ok_or(ImageError::DecoderLimit)?;
    if size as u64 > u64::from(header.width) * u64::from(header.height) * 4 {
        return Err(ImageError::DecoderLimit);
    }
    let mut buf = vec![0; size];
    let frame = reader.next_frame(&mut buf).map_err(failed)?;
    buf.truncate(frame.buffer_size());
    let (w, h) = (frame.width, frame.height);
    let image = match frame.color_type {
        png::ColorType::Grayscale => image::GrayImage::from_raw(w, h, buf).map(DynamicImage::ImageLuma8),
        png::ColorType::GrayscaleAlpha => image::GrayAlphaImage::from_raw(w, h, buf).map(DynamicImage::ImageLumaA8),
        png::ColorType::Rgb => image::RgbImage::from_raw(w, h, buf).map(DynamicImage::ImageRgb8),
        png::ColorType::Rgba => image::RgbaImage::from_raw(w, h, buf).map(DynamicImage::ImageRgba8),
        png::ColorType::Indexed => None,
    };
    image.ok_or(ImageError::NotAnImage)
}

/// A JPEG or GIF (its first frame), through the `image` crate's decoders, held to the header's
/// dimensions and to the charge's allocations.
fn decode(bytes: &[u8], header: &Header) -> Result<DynamicImage, ImageError> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), header.format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(header.width);
    limits.max_image_height = Some(header.height);
    limits.max_alloc = Some(header.decoding);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::DecoderLimit,
        e => {
            tracing::debug!(error = %e, "image decoding failed");
            ImageError::NotAnImage
        }
    })
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
    use duet_test_support::crafted;

    use super::*;

    const MP25: u64 = 25_000_000;
    const MB: u64 = 1024 * 1024;

    fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7])));
        encoded(img, ImageFormat::Png)
    }

    fn render(bytes: &[u8], max_pixels: u64) -> Result<Processed, ImageError> {
        let header = probe(bytes, max_pixels)?;
        Budget::new(max_pixels, 28 * MB).charge(&header, bytes.len() as u64)?;
        process(bytes, &header)
    }

    fn dims(p: &Processed) -> Vec<(u32, u32)> {
        let mut out = vec![(p.width, p.height)];
        out.extend(p.renditions.iter().map(|r| (r.width, r.height)));
        out
    }

    #[test]
    fn small_images_keep_their_size_and_bombs_are_refused_from_the_header() {
        let p = render(&png(100, 50), 1_000_000).unwrap();
        assert_eq!((p.format, p.width, p.height), (3, 100, 50));
        assert!(p.renditions.iter().all(|r| r.bytes.is_none() && (r.width, r.height) == (100, 50)));

        assert!(matches!(render(&png(100, 50), 4_999), Err(ImageError::TooManyPixels { .. })));
        // A GIF header claiming 25120x29813.
        let bomb = b"GIF89a but not really";
        assert!(matches!(render(bomb, 1_000_000), Err(ImageError::TooManyPixels { .. })));
        assert!(matches!(render(b"hello world", 1_000_000), Err(ImageError::NotAnImage)));
        assert!(matches!(render(b"", 1_000_000), Err(ImageError::NotAnImage)));
        assert!(matches!(render(&crafted::png(0, 10, 8, crafted::RGB, &[]), 100), Err(ImageError::NotAnImage)));

        let gif = crafted::gif(65535, 65535, 1, 1, 1);
        assert!(matches!(render(&gif, MP25), Err(ImageError::TooManyPixels { width: 65535, .. })));
        let jpeg = crafted::jpeg_header(65535, 65535);
        assert!(matches!(render(&jpeg, MP25), Err(ImageError::TooManyPixels { width: 65535, .. })));
    }

    #[test]
    fn an_image_more_extreme_than_1_to_100_is_refused_from_its_header() {
        let wide = crafted::png(25_000_000, 1, 16, crafted::RGBA, &[]);
        assert!(wide.len() < 2 * MB as usize, "{}", wide.len());
        assert!(matches!(render(&wide, MP25), Err(ImageError::TooExtreme { width: 25_000_000, height: 1 })));
        assert!(matches!(
            render(&crafted::png(1, 101, 8, crafted::GRAY, &[]), MP25),
            Err(ImageError::TooExtreme { .. })
        ));
        let p = render(&crafted::png(10_000, 100, 8, crafted::GRAY, &[]), MP25).unwrap();
        assert_eq!(dims(&p), vec![(10_000, 100), (720, 7), (198, 2)]);
    }

    #[test]
    fn sixteen_bit_pngs_are_decoded_to_8_bits_and_scaled_without_a_float_copy() {
        let bytes = crafted::png(3000, 2000, 16, crafted::RGBA, &[]);
        let header = probe(bytes.as_slice(), MP25).unwrap();
        // 4 bytes a pixel, not 8 (16-bit) nor 16 (the float buffer of a filtered resize).
        assert_eq!(header.decoding, 3000 * 2000 * 4 + 3000 * ROW_BYTES_PER_COLUMN);
        let p = process(&bytes, &header).unwrap();
        assert_eq!(dims(&p), vec![(3000, 2000), (720, 480), (198, 132)]);
        let large = image::load_from_memory(p.renditions[0].bytes.as_ref().unwrap()).unwrap();
        assert_eq!(large.color(), image::ColorType::Rgba8);
    }

    #[test]
    fn ancillary_chunks_are_never_inflated() {
        // 64 MiB of ICC profile and twice 64 MiB of text, in files of 0.4 and 0.8 MB, decode as 1x1
        // images (`crates/duet/tests/image_memory.rs` measures that nothing is inflated).
        for bomb in [crafted::png_iccp_bomb(64 * MB), crafted::png_text_bomb(64 * MB)] {
            assert!(bomb.len() < MB as usize, "{}", bomb.len());
            let p = render(&bomb, MP25).unwrap();
            assert_eq!(dims(&p), vec![(1, 1), (1, 1), (1, 1)]);
        }
        // An eXIf chunk is buffered, up to the PNG decoder's limit.
        let exif = crafted::png(1, 1, 8, crafted::RGB, &[(b"eXIf", vec![0; 3 * 1024 * 1024])]);
        assert!(matches!(render(&exif, MP25), Err(ImageError::DecoderLimit)));
    }

    #[test]
    fn gifs_decode_their_first_frame_within_the_screen() {
        let many = crafted::gif(16, 16, 16, 16, 3000);
        let p = render(&many, MP25).unwrap();
        assert_eq!((p.format, p.width, p.height), (2, 16, 16));
        // A frame larger than its screen: the decoder may allocate no more than the screen.
        let huge_frame = crafted::gif(16, 16, 65535, 65535, 1);
        let header = probe(huge_frame.as_slice(), MP25).unwrap();
        assert_eq!((header.width, header.height), (16, 16));
        assert!(matches!(process(&huge_frame, &header), Err(ImageError::DecoderLimit | ImageError::NotAnImage)));
    }

    #[test]
    fn jpeg_headers_are_found_past_large_segments_and_charged_by_their_kind() {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(1600, 900, |x, y| image::Rgb([x as u8, y as u8, 1])));
        let jpeg = encoded(img, ImageFormat::Jpeg);
        // 20 APP segments of 64 KiB (an EXIF thumbnail, a large ICC profile, extended XMP) before the frame.
        let mut padded = jpeg[..2].to_vec();
        for _ in 0..20 {
            padded.extend([0xFF, 0xE2, 0xFF, 0xFF]);
            padded.extend(vec![0xAB; 0xFFFF - 2]);
        }
        padded.extend(&jpeg[2..]);
        let header = probe(padded.as_slice(), MP25).unwrap();
        assert_eq!((header.format, header.width, header.height), (ImageFormat::Jpeg, 1600, 900));
        // Baseline, interleaved: the pixels and the rows only.
        assert_eq!(header.decoding, 1600 * 900 * 3 + 1600 * ROW_BYTES_PER_COLUMN);
        let p = process(&padded, &header).unwrap();
        assert_eq!(dims(&p), vec![(1600, 900), (720, 405), (198, 111)]);

        // Progressive, 4:2:0: 1.5 samples a pixel at 2 bytes each, besides the pixels.
        let mut progressive = crafted::jpeg_header(1600, 900);
        progressive[3] = 0xC2;
        progressive[13] = 0x22;
        let header = probe(progressive.as_slice(), MP25).unwrap();
        assert_eq!(header.decoding, 1600 * 900 * 3 + 1600 * ROW_BYTES_PER_COLUMN + 2 * (1600 * 912 + 2 * 800 * 456));
        // With no image data it is refused, after its charge.
        assert!(matches!(process(&progressive, &header), Err(ImageError::NotAnImage)));
    }

    #[test]
    fn the_budget_covers_the_largest_image_of_every_format() {
        let budget = Budget::new(MP25, 28 * MB);
        assert_eq!(budget.total, MP25 * 8 + 28 * MB + 16 * MB + 50_000 * 256);
        for bytes in [
            crafted::png(5000, 5000, 16, crafted::RGBA, &[]),
            crafted::gif(5000, 5000, 1, 1, 1),
            crafted::jpeg_header(5000, 5000),
        ] {
            let header = probe(bytes.as_slice(), MP25).unwrap();
            let charge = budget.charge(&header, 28 * MB).unwrap();
            assert!(charge <= budget.total, "{header:?}: {charge}");
        }
        // A progressive JPEG keeps its coefficients besides its pixels: 3 bytes a pixel more at 4:2:0,
        // 6 at 4:4:4. At the pixel cap in a large file, 4:4:4 is more than the budget.
        let mut progressive = crafted::jpeg_header(5000, 5000);
        progressive[3] = 0xC2;
        let header = probe(progressive.as_slice(), MP25).unwrap();
        assert!(matches!(budget.charge(&header, 28 * MB), Err(ImageError::OverBudget { .. })));
        assert!(budget.charge(&header, MB).is_ok(), "a smaller file fits");
        progressive[13] = 0x22;
        let header = probe(progressive.as_slice(), MP25).unwrap();
        assert!(budget.charge(&header, 28 * MB).is_ok(), "4:2:0 fits");
    }
}
