//! The latency stamp: the capture time written into the top rows of a picture.
//!
//! This module owns the pixel layout of the latency stamp contract in ARCHITECTURE.md, a contract
//! that tests outside the repository rely on to measure glass-to-glass latency from any receiver:
//!
//! - rows 0..15 of the luma plane hold 64 cells; cell `i` (0 = leftmost) spans columns
//!   `i*w .. (i+1)*w - 1` with `w = width / 64` (integer division);
//! - cell `i` shows bit `63 - i` of the capture time in microseconds since the UNIX epoch
//!   (realtime clock): luma [`LUMA_ONE`] (235) for 1, [`LUMA_ZERO`] (16) for 0;
//! - columns past `64 * w` in rows 0..15 are set to 16, and the chroma under the stamp (chroma
//!   rows 0..7) is neutral (128).
//!
//! Writing and reading live together so the round trip is tested in one place. The reader is
//! built for decoded (lossy) pictures: it averages an inner window of each cell and thresholds.

use crate::frame::I420Frame;

/// Number of luma rows the stamp occupies (rows 0..15).
pub const STAMP_ROWS: u32 = 16;
/// Number of cells (one per bit of the `u64` capture time).
pub const STAMP_CELLS: u32 = 64;
/// Luma of a cell showing a 1 bit.
pub const LUMA_ONE: u8 = 235;
/// Luma of a cell showing a 0 bit, and of the columns right of the last cell.
pub const LUMA_ZERO: u8 = 16;
/// Chroma (U and V) under the stamp.
pub const CHROMA_NEUTRAL: u8 = 128;
/// A cell whose inner-window average is at least this reads as a 1 bit.
pub const READ_THRESHOLD: u8 = 126;

/// Smallest picture width that can carry a stamp (one column per cell).
pub const MIN_WIDTH: u32 = STAMP_CELLS;
/// Smallest picture height that can carry a stamp.
pub const MIN_HEIGHT: u32 = STAMP_ROWS;

/// Width in pixels of one stamp cell for a picture `width` pixels wide (`width / 64`).
pub fn cell_width(width: u32) -> u32 {
    width / STAMP_CELLS
}

/// Writes `capture_us` (microseconds since the UNIX epoch) as the latency stamp into the top
/// 16 luma rows and the top 8 chroma rows of `frame`.
///
/// Pictures smaller than 64x16 cannot carry a stamp and are left unchanged.
pub fn write_stamp(frame: &mut I420Frame, capture_us: u64) {
    let width = frame.width() as usize;
    let height = frame.height() as usize;
    if width < MIN_WIDTH as usize || height < MIN_HEIGHT as usize {
        return;
    }
    let w = cell_width(frame.width()) as usize;
    let cells_end = STAMP_CELLS as usize * w;
    let chroma_width = frame.chroma_width() as usize;
    let chroma_rows = STAMP_ROWS as usize / 2;
    let (y, u, v) = frame.planes_mut();

    // Row 0 is built cell by cell, rows 1..15 are copies of it.
    let (first, rest) = y.split_at_mut(width);
    for (i, cell) in first[..cells_end].chunks_exact_mut(w).enumerate() {
        let bit = (capture_us >> (63 - i)) & 1;
        cell.fill(if bit == 1 { LUMA_ONE } else { LUMA_ZERO });
    }
    first[cells_end..].fill(LUMA_ZERO);
    let copies = (STAMP_ROWS as usize - 1) * width;
    for row in rest[..copies].chunks_exact_mut(width) {
        row.copy_from_slice(first);
    }

    // Neutral chroma under the whole stamp band (cells and the padding right of them).
    u[..chroma_rows * chroma_width].fill(CHROMA_NEUTRAL);
    v[..chroma_rows * chroma_width].fill(CHROMA_NEUTRAL);
}

/// Reads the latency stamp from a (possibly decoded, lossy) luma plane.
///
/// `luma` is the Y plane with `stride` bytes per row of a picture `width` x `height`. For each
/// cell the pixels of an inner window are averaged (rows 2..13; columns 2 in from each side of
/// the cell when the cell is at least 6 pixels wide) and compared with [`READ_THRESHOLD`], so
/// coding noise and blur at cell edges do not flip bits.
///
/// Returns `None` when the picture is too small to carry a stamp (width < 64 or height < 16) or
/// when `luma` / `stride` cannot hold the stamp rows.
pub fn read_stamp(luma: &[u8], stride: usize, width: u32, height: u32) -> Option<u64> {
    if width < MIN_WIDTH || height < MIN_HEIGHT || stride < width as usize {
        return None;
    }
    let w = cell_width(width) as usize;
    let (c0, c1) = if w >= 6 { (2, w - 2) } else { (0, w) };
    const FIRST_ROW: usize = 2;
    const LAST_ROW: usize = 13;
    // The last byte read is in row 13, column 64 * w - 1.
    let needed = stride
        .checked_mul(LAST_ROW)?
        .checked_add(STAMP_CELLS as usize * w)?;
    if luma.len() < needed {
        return None;
    }
    let count = ((LAST_ROW - FIRST_ROW + 1) * (c1 - c0)) as u64;
    let threshold = u64::from(READ_THRESHOLD) * count;
    let mut value = 0u64;
    for i in 0..STAMP_CELLS as usize {
        let start = i * w;
        let sum: u64 = (FIRST_ROW..=LAST_ROW)
            .map(|r| {
                let row = r * stride + start;
                luma[row + c0..row + c1]
                    .iter()
                    .map(|&p| u64::from(p))
                    .sum::<u64>()
            })
            .sum();
        value = (value << 1) | u64::from(sum >= threshold);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-05-01T12:34:56.789012Z in microseconds since the epoch.
    const MAY_2026_US: u64 = 1_777_638_896_789_012;

    fn stamped(width: u32, height: u32, value: u64) -> I420Frame {
        let mut f = I420Frame::new(width, height);
        // Non-neutral content everywhere so the test sees what the stamp overwrites.
        f.data_mut().fill(77);
        write_stamp(&mut f, value);
        f
    }

    fn read(f: &I420Frame) -> Option<u64> {
        read_stamp(f.planes().0, f.width() as usize, f.width(), f.height())
    }

    const VALUES: [u64; 6] = [
        0,
        u64::MAX,
        MAY_2026_US,
        1,
        0x8000_0000_0000_0000,
        0xA5A5_5A5A_0F0F_F0F0,
    ];

    #[test]
    fn round_trip_several_widths() {
        for (w, h) in [(640, 480), (1280, 720), (352, 288), (64, 16), (130, 32)] {
            for v in VALUES {
                assert_eq!(read(&stamped(w, h, v)), Some(v), "{w}x{h} value {v:#x}");
            }
        }
    }

    #[test]
    fn layout_matches_the_contract() {
        // 352 / 64 = 5: cells are 5 pixels wide, columns 320..351 are padding.
        let f = stamped(352, 288, MAY_2026_US);
        let (y, u, v) = f.planes();
        let w = 5usize;
        for row in 0..16usize {
            for i in 0..64usize {
                let bit = (MAY_2026_US >> (63 - i)) & 1;
                let want = if bit == 1 { 235 } else { 16 };
                for col in i * w..(i + 1) * w {
                    assert_eq!(y[row * 352 + col], want, "row {row} col {col}");
                }
            }
            assert!(y[row * 352 + 320..row * 352 + 352].iter().all(|&p| p == 16));
        }
        // Row 16 is untouched.
        assert!(y[16 * 352..17 * 352].iter().all(|&p| p == 77));
        // Chroma rows 0..7 neutral, row 8 untouched.
        assert!(u[..8 * 176].iter().all(|&p| p == 128));
        assert!(v[..8 * 176].iter().all(|&p| p == 128));
        assert_eq!(u[8 * 176], 77);
        assert_eq!(v[8 * 176], 77);
    }

    /// A small deterministic generator (no dependency needed).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn survives_noise_of_40() {
        let mut rng = Lcg(42);
        for (w, h) in [(640, 480), (1280, 720), (352, 288)] {
            for v in VALUES {
                let mut f = stamped(w, h, v);
                for p in f.planes_mut().0.iter_mut() {
                    let noise = (rng.next() % 81) as i32 - 40;
                    *p = (i32::from(*p) + noise).clamp(0, 255) as u8;
                }
                assert_eq!(read(&f), Some(v), "{w}x{h} value {v:#x}");
            }
        }
    }

    #[test]
    fn blurred_cell_edges_do_not_flip_bits() {
        // Smear every cell edge by 2 pixels towards the neighbour's value, as a codec might.
        let v = 0xAAAA_AAAA_AAAA_AAAA;
        let mut f = stamped(640, 480, v);
        let (y, _, _) = f.planes_mut();
        for row in 0..16 {
            for i in 1..64 {
                let edge = row * 640 + i * 10;
                let mid = ((u16::from(y[edge - 3]) + u16::from(y[edge])) / 2) as u8;
                y[edge - 2..edge + 2].fill(mid);
            }
        }
        assert_eq!(read(&f), Some(v));
    }

    #[test]
    fn reads_with_padded_stride() {
        let f = stamped(640, 32, MAY_2026_US);
        let stride = 704;
        let mut padded = vec![0u8; stride * 32];
        for (r, row) in f.planes().0.chunks_exact(640).enumerate() {
            padded[r * stride..r * stride + 640].copy_from_slice(row);
        }
        assert_eq!(read_stamp(&padded, stride, 640, 32), Some(MAY_2026_US));
    }

    #[test]
    fn too_small_or_short_input_is_none() {
        assert_eq!(read_stamp(&[0; 63 * 16], 63, 63, 16), None);
        assert_eq!(read_stamp(&[0; 64 * 15], 64, 64, 15), None);
        assert_eq!(read_stamp(&[0; 100], 64, 64, 16), None);
        assert_eq!(read_stamp(&[], 640, 640, 480), None);
        assert_eq!(read_stamp(&[0; 640 * 16], 10, 640, 16), None);
        assert_eq!(read_stamp(&[0; 64], usize::MAX, 64, 16), None);
        // Exactly enough bytes: rows 0..13 plus the cells of row 13.
        assert_eq!(read_stamp(&[16; 64 * 14], 64, 64, 16), Some(0));
    }

    #[test]
    fn small_frames_are_left_alone() {
        let mut f = I420Frame::new(62, 16);
        f.data_mut().fill(77);
        write_stamp(&mut f, u64::MAX);
        assert!(f.data().iter().all(|&p| p == 77));
        let mut f = I420Frame::new(64, 14);
        f.data_mut().fill(77);
        write_stamp(&mut f, u64::MAX);
        assert!(f.data().iter().all(|&p| p == 77));
    }
}
