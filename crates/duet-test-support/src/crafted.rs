//! Crafted images for the media tests: valid headers over data made to cost a decoder (decompression
//! bombs, extreme dimensions), built byte by byte in the test rather than kept as binary fixtures.
//! Compressed streams are of zero bytes, which compress about 160:1 here, so that a 200 MB bitmap is
//! a 1.3 MB file.

/// Bits written least significant first, as DEFLATE and GIF's LZW pack them.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code: most significant bit first.
    fn code(&mut self, code: u32, bits: u32) {
        self.put(code.reverse_bits() >> (32 - bits), bits);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// `n` zero bytes as a zlib stream: one block of fixed Huffman codes, a literal 0 and then copies of
/// 258 bytes at distance 1 (13 bits each).
pub fn zlib_zeros(n: u64) -> Vec<u8> {
    let mut bits = Bits::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // fixed Huffman codes
    if n > 0 {
        bits.code(0x30, 8); // literal 0
        let mut left = n - 1;
        while left >= 258 {
            bits.code(0xC5, 8); // length code 285: 258 bytes
            bits.code(0, 5); // distance code 0: 1 byte back
            left -= 258;
        }
        for _ in 0..left {
            bits.code(0x30, 8);
        }
    }
    bits.code(0, 7); // end of block
    let mut out = vec![0x78, 0x01];
    out.extend(bits.finish());
    let adler = ((n % 65521) << 16) as u32 | 1;
    out.extend(adler.to_be_bytes());
    out
}

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &b in *part {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    out.extend(crc32(&[kind, data]).to_be_bytes());
}

/// PNG color types.
pub const GRAY: u8 = 0;
pub const RGB: u8 = 2;
pub const RGBA: u8 = 6;

/// A black (all-zero) `width` x `height` PNG of `depth` bits per channel, with `extra` chunks before
/// its image data.
pub fn png(width: u32, height: u32, depth: u8, color: u8, extra: &[(&[u8; 4], Vec<u8>)]) -> Vec<u8> {
    let channels: u64 = match color {
        GRAY => 1,
        RGB => 3,
        RGBA => 4,
        _ => panic!("unsupported color type {color}"),
    };
    let row = (u64::from(width) * channels * u64::from(depth)).div_ceil(8);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([depth, color, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    for (kind, data) in extra {
        png_chunk(&mut out, kind, data);
    }
    // Each row is a filter byte (0: none) and the row's bytes: all zeros.
    png_chunk(&mut out, b"IDAT", &zlib_zeros(u64::from(height) * (1 + row)));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A 1x1 PNG whose ICC profile (`iCCP`) inflates to `inflated` bytes.
pub fn png_iccp_bomb(inflated: u64) -> Vec<u8> {
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend(zlib_zeros(inflated));
    png(1, 1, 8, RGB, &[(b"iCCP", iccp)])
}

/// A 1x1 PNG with compressed text (`zTXt` and `iTXt`) that inflates to `inflated` bytes each.
pub fn png_text_bomb(inflated: u64) -> Vec<u8> {
    let mut ztxt = b"Comment\0\0".to_vec();
    ztxt.extend(zlib_zeros(inflated));
    let mut itxt = b"XML:com.adobe.xmp\0\x01\0\0\0".to_vec();
    itxt.extend(zlib_zeros(inflated));
    png(1, 1, 8, RGB, &[(b"zTXt", ztxt), (b"iTXt", itxt)])
}

/// A baseline JPEG's headers declaring `width` x `height` (3 components, no subsampling), without
/// image data.
pub fn jpeg_header(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut sof = vec![0xFF, 0xC0, 0, 17, 8];
    sof.extend(height.to_be_bytes());
    sof.extend(width.to_be_bytes());
    sof.extend([3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    out.extend(sof);
    out.extend([0xFF, 0xDA, 0, 12, 3, 1, 0, 2, 0, 3, 0, 0, 63, 0]);
    out.extend([0xFF, 0xD9]);
    out
}

/// A GIF with a `screen_w` x `screen_h` logical screen and `frames` black frames of
/// `frame_w` x `frame_h` (two colors; LZW data that clears its table every two pixels, for at most
/// 65536 pixels: a larger frame is truncated).
pub fn gif(screen_w: u16, screen_h: u16, frame_w: u16, frame_h: u16, frames: usize) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend(screen_w.to_le_bytes());
    out.extend(screen_h.to_le_bytes());
    out.extend([0x80, 0, 0]); // a global color table of 2 entries
    out.extend([0, 0, 0, 255, 255, 255]);
    let pixels = (u64::from(frame_w) * u64::from(frame_h)).min(1 << 16);
    let mut bits = Bits::default();
    let (clear, end) = (4, 5);
    let mut left = pixels;
    while left > 0 {
        bits.put(clear, 3);
        let n = left.min(2);
        for _ in 0..n {
            bits.put(0, 3);
        }
        left -= n;
    }
    bits.put(end, 3);
    let data = bits.finish();
    for _ in 0..frames {
        out.push(0x2C);
        out.extend([0, 0, 0, 0]);
        out.extend(frame_w.to_le_bytes());
        out.extend(frame_h.to_le_bytes());
        out.push(0);
        out.push(2); // LZW minimum code size
        for block in data.chunks(255) {
            out.push(block.len() as u8);
            out.extend(block);
        }
        out.push(0);
    }
    out.push(0x3B);
    out
}
