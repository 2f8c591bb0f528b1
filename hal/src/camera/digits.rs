//! A tiny bitmap font (5x7 glyphs: digits 0-9 and the letters of "NO SIGNAL") for drawing into
//! a luma plane.
//!
//! The test pattern shows its frame number in readable digits (the test pattern contract in
//! ARCHITECTURE.md) so a person looking at the viewer page, or a test reading a decoded picture,
//! can spot dropped or repeated frames; the "no signal" slate ([`super::slate`]) shows its text and
//! how long the camera has been away. Drawing is clipped to the plane: any position and scale is
//! safe, nothing is written out of bounds and nothing is allocated.

/// Glyph width in font pixels.
pub const GLYPH_WIDTH: u32 = 5;
/// Glyph height in font pixels.
pub const GLYPH_HEIGHT: u32 = 7;

/// 5x7 glyphs for 0-9; each row's 5 low bits, most significant bit = leftmost pixel.
const FONT: [Glyph; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
];

/// One 5x7 glyph: each row's 5 low bits, most significant bit = leftmost pixel.
pub type Glyph = [u8; GLYPH_HEIGHT as usize];

/// The glyph of an ASCII character this font has (digits, space and `A G I L N O S`).
pub fn glyph(c: char) -> Option<Glyph> {
    Some(match c {
        '0'..='9' => FONT[c as usize - '0' as usize],
        ' ' => [0; GLYPH_HEIGHT as usize],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        _ => return None,
    })
}

/// Most decimal digits a `u64` has.
const MAX_DIGITS: usize = 20;

/// Writes the decimal digits of `value` into `out`, returns how many were written.
fn decimal_digits(mut value: u64, out: &mut [u8; MAX_DIGITS]) -> usize {
    let mut n = 0;
    loop {
        out[n] = (value % 10) as u8;
        n += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out[..n].reverse();
    n
}

/// Size in pixels `(width, height)` of the box [`draw_number`] fills for `value` at `scale`:
/// one font pixel of margin around the digits and one between them, so
/// `((6 * digits + 1) * scale, 9 * scale)`.
pub fn number_size(value: u64, scale: u32) -> (u64, u64) {
    let mut digits = [0u8; MAX_DIGITS];
    text_size(decimal_digits(value, &mut digits), scale)
}

/// Size in pixels `(width, height)` of the box [`draw_glyphs`] fills for `glyphs` glyphs.
pub fn text_size(glyphs: usize, scale: u32) -> (u64, u64) {
    let s = u64::from(scale);
    ((6 * glyphs as u64 + 1) * s, (GLYPH_HEIGHT as u64 + 2) * s)
}

/// Draws `value` in decimal into the luma plane `luma` (`stride` bytes per row), each font pixel
/// a `scale` x `scale` square, digits in `fg` on a `bg` box whose top-left corner is `(x, y)`.
///
/// The box is [`number_size`] big. Drawing is clipped to the plane (rows are
/// `luma.len() / stride`, columns `stride`): any `x`, `y` and `scale` are safe, and a zero
/// `scale` or `stride` draws nothing.
#[allow(clippy::too_many_arguments)] // the signature is the module's documented API
pub fn draw_number(
    luma: &mut [u8],
    stride: usize,
    x: u32,
    y: u32,
    scale: u32,
    value: u64,
    fg: u8,
    bg: u8,
) {
    let mut digits = [0u8; MAX_DIGITS];
    let n = decimal_digits(value, &mut digits);
    let mut glyphs = [[0u8; GLYPH_HEIGHT as usize]; MAX_DIGITS];
    for (g, &d) in glyphs.iter_mut().zip(&digits[..n]) {
        *g = FONT[usize::from(d)];
    }
    draw_glyphs(luma, stride, x, y, scale, &glyphs[..n], fg, bg);
}

/// Draws `glyphs` in a row into the luma plane, like [`draw_number`] (same box, margins and
/// clipping); [`glyph`] gives the glyph of a character.
#[allow(clippy::too_many_arguments)] // the signature is the module's documented API
pub fn draw_glyphs(
    luma: &mut [u8],
    stride: usize,
    x: u32,
    y: u32,
    scale: u32,
    glyphs: &[Glyph],
    fg: u8,
    bg: u8,
) {
    if stride == 0 || scale == 0 {
        return;
    }
    let (box_w, box_h) = text_size(glyphs.len(), scale);
    let s = u64::from(scale);
    let rows = (luma.len() / stride) as u64;
    let x0 = u64::from(x);
    let y0 = u64::from(y);
    let x_end = (x0 + box_w).min(stride as u64);
    let y_end = (y0 + box_h).min(rows);
    if x0 >= x_end || y0 >= y_end {
        return;
    }

    for py in y0..y_end {
        // py < rows, so the whole row is inside the plane.
        let start = py as usize * stride;
        let row = &mut luma[start..start + stride];
        row[x0 as usize..x_end as usize].fill(bg);
        let font_row = (py - y0) / s;
        if font_row == 0 || font_row > u64::from(GLYPH_HEIGHT) {
            continue; // top or bottom margin
        }
        let glyph_row = (font_row - 1) as usize;
        for (d, glyph) in glyphs.iter().enumerate() {
            let glyph_x = x0 + s + d as u64 * 6 * s;
            if glyph_x >= x_end {
                break;
            }
            let bits = glyph[glyph_row];
            for col in 0..u64::from(GLYPH_WIDTH) {
                if bits & (0x10 >> col) == 0 {
                    continue;
                }
                let a = glyph_x + col * s;
                let b = (a + s).min(x_end);
                if a < b {
                    row[a as usize..b as usize].fill(fg);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back the 7 glyph rows of the `d`-th digit of a number drawn at (`x`, `y`), scale `s`.
    fn font_pixel(plane: &[u8], stride: usize, x: usize, y: usize, s: usize, d: usize) -> Vec<u8> {
        let mut rows = Vec::new();
        for r in 0..7 {
            let mut bits = 0u8;
            for c in 0..5 {
                // Sample the centre of the scaled font pixel.
                let px = x + s + d * 6 * s + c * s + s / 2;
                let py = y + s + r * s + s / 2;
                if plane[py * stride + px] == 235 {
                    bits |= 0x10 >> c;
                }
            }
            rows.push(bits);
        }
        rows
    }

    #[test]
    fn draws_all_digits_readably() {
        let (stride, height) = (400usize, 60usize);
        let mut plane = vec![100u8; stride * height];
        draw_number(&mut plane, stride, 3, 5, 3, 1_234_567_890, 235, 16);
        let expect = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0];
        for (d, &digit) in expect.iter().enumerate() {
            assert_eq!(
                font_pixel(&plane, stride, 3, 5, 3, d),
                FONT[digit].to_vec(),
                "digit {d}"
            );
        }
        // Box is (6 * 10 + 1) * 3 = 183 wide, 27 tall; background inside, untouched outside.
        assert_eq!(plane[5 * stride + 3], 16);
        assert_eq!(plane[(5 + 26) * stride + 3 + 182], 16);
        assert_eq!(plane[4 * stride + 3], 100);
        assert_eq!(plane[5 * stride + 2], 100);
        assert_eq!(plane[5 * stride + 3 + 183], 100);
        assert_eq!(plane[(5 + 27) * stride + 3], 100);
        assert_eq!(number_size(1_234_567_890, 3), (183, 27));
    }

    #[test]
    fn zero_and_max() {
        assert_eq!(number_size(0, 1), (7, 9));
        assert_eq!(number_size(u64::MAX, 1), (121, 9));
        let mut plane = vec![0u8; 130 * 9];
        draw_number(&mut plane, 130, 0, 0, 1, u64::MAX, 235, 16);
        assert_eq!(font_pixel(&plane, 130, 0, 0, 1, 0), FONT[1].to_vec());
        assert_eq!(font_pixel(&plane, 130, 0, 0, 1, 19), FONT[5].to_vec());
        let mut plane = vec![0u8; 7 * 9];
        draw_number(&mut plane, 7, 0, 0, 1, 0, 235, 16);
        assert_eq!(font_pixel(&plane, 7, 0, 0, 1, 0), FONT[0].to_vec());
    }

    #[test]
    fn clipping_never_panics_or_writes_outside() {
        let sizes = [0usize, 1, 7, 63, 64 * 10 + 3];
        let strides = [0usize, 1, 3, 64, 1000];
        let coords = [0u32, 1, 5, 63, 64, 1000, u32::MAX - 1, u32::MAX];
        let scales = [0u32, 1, 2, 6, 1000, u32::MAX];
        for &len in &sizes {
            for &stride in &strides {
                for &x in &coords {
                    for &y in &coords {
                        for &scale in &scales {
                            // A guard region after the plane must stay untouched.
                            let mut buf = vec![9u8; len + 16];
                            let (plane, guard) = buf.split_at_mut(len);
                            draw_number(plane, stride, x, y, scale, u64::MAX, 235, 16);
                            assert!(guard.iter().all(|&g| g == 9));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn partial_last_row_is_not_drawn() {
        // 10 bytes with stride 4: rows 0 and 1 exist, the 2 bytes of a third row do not count.
        let mut plane = [1u8; 10];
        draw_number(&mut plane, 4, 0, 0, 1, 8, 235, 16);
        assert_eq!(&plane[8..], &[1, 1]);
        assert!(plane[..8].iter().all(|&p| p == 16 || p == 235));
    }
}
