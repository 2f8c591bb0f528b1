//! The "no signal" slate: the picture viewers get while the camera is away.
//!
//! When a camera fails (unplugged, driver error) the node keeps its stream alive with this slate
//! instead of freezing on the last picture: a dark frame that says NO SIGNAL and counts the seconds
//! the camera has been away, so a person watching knows the node is alive and the camera is not.
//! The slate carries the latency stamp like the test pattern (the latency stamp contract in
//! ARCHITECTURE.md), so a receiver measuring latency keeps measuring through an outage, and its
//! luma is [`SLATE_LUMA`] outside the text, which tests use to tell it from a camera picture.
//!
//! Drawing reuses the caller's frame (fixed buffers: nothing is allocated).

use super::digits::{GLYPH_HEIGHT, Glyph, draw_glyphs, draw_number, glyph, number_size, text_size};
use super::stamp::{STAMP_ROWS, write_stamp};
use crate::frame::I420Frame;

/// Luma of the slate's background.
pub const SLATE_LUMA: u8 = 40;
/// Luma of the slate's text.
const TEXT_LUMA: u8 = 200;
/// The slate's text.
const TEXT: &str = "NO SIGNAL";

/// Draws the slate into `frame`: background, "NO SIGNAL", the seconds the camera has been
/// `away_s`, and the latency stamp for `capture_us` (µs since the UNIX epoch).
pub fn draw_slate(frame: &mut I420Frame, capture_us: u64, away_s: u64) {
    let (width, height) = (frame.width(), frame.height());
    {
        let (y, u, v) = frame.planes_mut();
        y.fill(SLATE_LUMA);
        u.fill(128);
        v.fill(128);
    }
    let mut glyphs: [Glyph; TEXT.len()] = [[0; GLYPH_HEIGHT as usize]; TEXT.len()];
    for (g, c) in glyphs.iter_mut().zip(TEXT.chars()) {
        *g = glyph(c).unwrap_or_default();
    }
    // The text spans about 60% of the width; the counter sits below it at half the scale.
    let scale = (width * 6 / 10 / text_size(TEXT.len(), 1).0 as u32).max(1);
    let (text_w, text_h) = text_size(TEXT.len(), scale);
    let small = (scale / 2).max(1);
    let (num_w, num_h) = number_size(away_s, small);
    let block_h = text_h + num_h;
    let top = (u64::from(height).saturating_sub(block_h) / 2).max(u64::from(STAMP_ROWS));
    let stride = width as usize;
    let (luma, _, _) = frame.planes_mut();
    let x = u64::from(width).saturating_sub(text_w) / 2;
    draw_glyphs(
        luma, stride, x as u32, top as u32, scale, &glyphs, TEXT_LUMA, SLATE_LUMA,
    );
    let x = u64::from(width).saturating_sub(num_w) / 2;
    draw_number(
        luma,
        stride,
        x as u32,
        (top + text_h) as u32,
        small,
        away_s,
        TEXT_LUMA,
        SLATE_LUMA,
    );
    frame.capture_us = capture_us;
    write_stamp(frame, capture_us);
}

/// Whether a (decoded) luma plane looks like the slate: its bottom rows, below the text, are
/// the slate's background. For tests and diagnostics.
pub fn looks_like_slate(luma: &[u8], stride: usize, height: u32) -> bool {
    let rows = (height as usize).min(luma.len() / stride.max(1));
    if rows < 8 || stride == 0 {
        return false;
    }
    let band = &luma[(rows - 4) * stride..rows * stride];
    let mean = band.iter().map(|&p| u64::from(p)).sum::<u64>() / band.len() as u64;
    mean.abs_diff(u64::from(SLATE_LUMA)) <= 6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::stamp::read_stamp;

    #[test]
    fn slate_carries_the_stamp_text_and_background() {
        for (w, h) in [(640, 480), (1280, 720), (320, 240), (64, 16), (2, 2)] {
            let mut f = I420Frame::new(w, h);
            draw_slate(&mut f, 1_700_000_000_123_456, 12);
            assert_eq!(f.capture_us, 1_700_000_000_123_456);
            let (y, _, _) = f.planes();
            if w >= 64 && h >= 16 {
                assert_eq!(
                    read_stamp(y, w as usize, w, h),
                    Some(1_700_000_000_123_456),
                    "{w}x{h}"
                );
            }
            if h >= 32 {
                assert!(looks_like_slate(y, w as usize, h), "{w}x{h}");
                // The text is there: some pixels are bright below the stamp.
                let body = &y[(STAMP_ROWS as usize) * w as usize..];
                assert!(body.contains(&TEXT_LUMA), "{w}x{h}");
            }
        }
    }

    #[test]
    fn a_camera_picture_is_not_the_slate() {
        let f = I420Frame::new(640, 480); // black
        assert!(!looks_like_slate(f.planes().0, 640, 480));
        assert!(!looks_like_slate(&[], 0, 480));
    }

    #[test]
    fn the_counter_changes_the_picture() {
        let mut a = I420Frame::new(640, 480);
        let mut b = I420Frame::new(640, 480);
        draw_slate(&mut a, 1, 1);
        draw_slate(&mut b, 1, 2);
        assert_ne!(a.planes().0, b.planes().0);
    }
}
