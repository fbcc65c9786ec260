//! Inputs the `media_probe` fuzz target (`fuzz/`) found wrong, each with what it broke.

use duet_image::{ImageError, probe};

/// A PNG header of 4294967295 x 4294967295: the decoding charge (4 bytes a pixel) overflowed u64 before
/// the pixel cap refused the header, a panic in builds with overflow checks.
#[test]
fn a_png_of_the_largest_dimensions_is_refused_without_overflow() {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend([0xFF; 8]);
    png.extend([8, 2, 0, 0, 0]);
    assert!(matches!(
        probe(png.as_slice(), 25_000_000),
        Err(ImageError::TooManyPixels { width: u32::MAX, height: u32::MAX, .. })
    ));
}
