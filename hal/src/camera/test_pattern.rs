//! `TestPattern`: a synthetic, free-running source that carries the latency stamp.
//!
//! It is the node's default source (`--source test-pattern`) and the one outside tests use to
//! measure glass-to-glass latency, so every frame carries the latency stamp (the contract in
//! ARCHITECTURE.md; see [`super::stamp`]) and shows its frame number in readable digits. The rest
//! of the picture moves (a scrolling diagonal luma ramp, sliding colour bars, a bouncing box) so
//! the encoder does real work, as it would on a camera.
//!
//! It runs 30 times a second on a Pi Zero, so drawing is row copies from tables built once in
//! [`TestPattern::new`]; nothing is allocated per frame.

use super::digits;
use super::orient::{self, Orientation};
use super::stamp::{self, STAMP_ROWS};
use super::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, WallClock};
use crate::frame::I420Frame;

/// Smallest accepted width (the stamp needs one column per bit).
pub const MIN_WIDTH: u32 = 64;
/// Smallest accepted height (the stamp takes 16 rows; the rest must show something).
pub const MIN_HEIGHT: u32 = 32;
/// Largest accepted width or height (VP8's limit).
pub const MAX_DIMENSION: u32 = 16383;

/// Period of the luma ramp, in pixels.
const RAMP_PERIOD: usize = 256;
/// Diagonal scroll of the ramp per frame, in pixels.
const RAMP_STEP: u64 = 3;
/// Horizontal slide of the colour bars per frame, in chroma pixels.
const BAR_STEP: u64 = 2;
/// The colour bars' (U, V): white, yellow, cyan, green, magenta, red, blue, black.
const BARS: [(u8, u8); 8] = [
    (128, 128),
    (44, 142),
    (156, 44),
    (72, 58),
    (184, 198),
    (100, 212),
    (212, 114),
    (128, 128),
];
/// The bouncing box's luma and chroma (U, V): a bright orange.
const BOX_COLOUR: (u8, u8, u8) = (200, 60, 200);
/// Where the frame number is drawn (below the stamp), and how big.
const NUMBER_X: u32 = 16;
const NUMBER_Y: u32 = 40;
const NUMBER_SCALE: u32 = 6;

/// A moving synthetic picture with the latency stamp and the frame number.
pub struct TestPattern {
    width: u32,
    height: u32,
    fps_num: u32,
    fps_den: u32,
    seq: u64,
    /// `ramp[k]` is the luma at diagonal position `k`; `width + RAMP_PERIOD` long, so any row
    /// is one slice of it.
    ramp: Vec<u8>,
    /// One chroma row of colour bars for U and V, `chroma_width + bar_period` long.
    bars_u: Vec<u8>,
    bars_v: Vec<u8>,
    bar_period: usize,
    box_size: u32,
    /// Flips applied to the picture before the stamp is drawn (so the stamp always reads).
    orientation: Orientation,
}

impl std::fmt::Debug for TestPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPattern")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps_num", &self.fps_num)
            .field("fps_den", &self.fps_den)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

/// Triangle wave: goes 0, 1, .., `range`, .., 1, 0, 1, .. as `t` counts up.
fn bounce(t: u64, range: u64) -> u64 {
    if range == 0 {
        return 0;
    }
    let p = t % (2 * range);
    if p <= range { p } else { 2 * range - p }
}

impl TestPattern {
    /// A test pattern of `width` x `height` at `fps_num / fps_den` frames per second.
    ///
    /// Width and height must be even, at least 64x32 and at most 16383; the rate must be
    /// non-zero. Anything else is [`ErrorKind::InvalidInput`].
    pub fn new(width: u32, height: u32, fps_num: u32, fps_den: u32) -> Result<Self, CameraError> {
        if width < MIN_WIDTH
            || height < MIN_HEIGHT
            || width > MAX_DIMENSION
            || height > MAX_DIMENSION
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
        {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "test pattern size {width}x{height} is not valid: width and height must be \
                     even, at least {MIN_WIDTH}x{MIN_HEIGHT} and at most \
                     {MAX_DIMENSION}x{MAX_DIMENSION} (e.g. 640x480 or 1280x720)"
                ),
            ));
        }
        if fps_num == 0 || fps_den == 0 {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "test pattern frame rate {fps_num}/{fps_den} is not valid: both numerator \
                     and denominator must be non-zero (e.g. 30/1)"
                ),
            ));
        }

        let ramp = (0..width as usize + RAMP_PERIOD)
            .map(|k| {
                // Triangle 0..127..0 over one period, scaled to video range 16..235.
                let t = (k % RAMP_PERIOD) as u32;
                let tri = if t < 128 { t } else { 255 - t };
                (16 + tri * 219 / 127) as u8
            })
            .collect();

        let chroma_width = width.div_ceil(2) as usize;
        let bar_width = (chroma_width / BARS.len()).max(1);
        let bar_period = bar_width * BARS.len();
        let bar = |k: usize| BARS[(k / bar_width) % BARS.len()];
        let bars_u = (0..chroma_width + bar_period).map(|k| bar(k).0).collect();
        let bars_v = (0..chroma_width + bar_period).map(|k| bar(k).1).collect();
        // Even, so it lines up with chroma; at least 8 pixels.
        let box_size = ((width.min(height) / 5) & !1).max(8);

        Ok(Self {
            width,
            height,
            fps_num,
            fps_den,
            seq: 0,
            ramp,
            bars_u,
            bars_v,
            bar_period,
            box_size,
            orientation: Orientation::default(),
        })
    }

    /// The pattern flipped as a camera mounted with `o` would deliver it; the latency stamp is
    /// drawn after the flip, so it reads the same in every orientation.
    pub fn with_orientation(mut self, o: Orientation) -> Self {
        self.orientation = o;
        self
    }

    /// Draws the moving background, the box and the frame number `n` (everything but the stamp).
    fn draw(&self, frame: &mut I420Frame, n: u64) {
        let width = self.width as usize;
        let chroma_width = frame.chroma_width() as usize;
        let stamp_rows = STAMP_ROWS as usize;
        let (y, u, v) = frame.planes_mut();

        // Luma: a diagonal ramp scrolling by RAMP_STEP per frame. Rows 0..15 are the stamp's.
        let shift = ((n % RAMP_PERIOD as u64) * RAMP_STEP) as usize;
        for (r, row) in y.chunks_exact_mut(width).enumerate().skip(stamp_rows) {
            let off = (r + shift) % RAMP_PERIOD;
            row.copy_from_slice(&self.ramp[off..off + width]);
        }

        // Chroma: slanted colour bars sliding right. Chroma rows 0..7 are under the stamp.
        let slide = ((n % self.bar_period as u64) * BAR_STEP) as usize;
        let rows = u
            .chunks_exact_mut(chroma_width)
            .zip(v.chunks_exact_mut(chroma_width))
            .enumerate()
            .skip(stamp_rows / 2);
        for (r, (u_row, v_row)) in rows {
            let off = (self.bar_period - (slide + r / 4) % self.bar_period) % self.bar_period;
            u_row.copy_from_slice(&self.bars_u[off..off + chroma_width]);
            v_row.copy_from_slice(&self.bars_v[off..off + chroma_width]);
        }

        // A box bouncing around below the stamp.
        let b = self.box_size as usize;
        let bx = bounce(n.wrapping_mul(5), u64::from(self.width - self.box_size)) as usize & !1;
        let y_range = self.height - STAMP_ROWS - self.box_size;
        let by = (stamp_rows + bounce(n.wrapping_mul(3), u64::from(y_range)) as usize) & !1;
        for row in y.chunks_exact_mut(width).skip(by).take(b) {
            row[bx..bx + b].fill(BOX_COLOUR.0);
        }
        let (cx, cy, cb) = (bx / 2, by / 2, b / 2);
        for row in u.chunks_exact_mut(chroma_width).skip(cy).take(cb) {
            row[cx..cx + cb].fill(BOX_COLOUR.1);
        }
        for row in v.chunks_exact_mut(chroma_width).skip(cy).take(cb) {
            row[cx..cx + cb].fill(BOX_COLOUR.2);
        }

        digits::draw_number(y, width, NUMBER_X, NUMBER_Y, NUMBER_SCALE, n, 235, 16);
    }
}

impl FrameSource for TestPattern {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "test-pattern",
            description: format!(
                "synthetic test pattern with latency stamp, {}x{} at {}/{} fps{}",
                self.width,
                self.height,
                self.fps_num,
                self.fps_den,
                match (self.orientation.hflip, self.orientation.vflip) {
                    (true, true) => ", rotated 180",
                    (true, false) => ", flipped horizontally",
                    (false, true) => ", flipped vertically",
                    (false, false) => "",
                }
            ),
            width: self.width,
            height: self.height,
            fps_num: self.fps_num,
            fps_den: self.fps_den,
        }
    }

    fn pacing(&self) -> Pacing {
        Pacing::Free
    }

    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        if frame.width() != self.width || frame.height() != self.height {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "frame is {}x{} but the test pattern is {}x{}: allocate frames with the \
                     size from info()",
                    frame.width(),
                    frame.height(),
                    self.width,
                    self.height
                ),
            ));
        }
        let n = self.seq;
        self.draw(frame, n);
        orient::apply(frame, self.orientation);
        let now = clock.now_us();
        stamp::write_stamp(frame, now);
        frame.capture_us = now;
        frame.seq = n;
        self.seq = self.seq.wrapping_add(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::FixedClock;
    use crate::camera::stamp::read_stamp;

    const NOW: u64 = 1_777_638_896_789_012;

    fn capture(p: &mut TestPattern, f: &mut I420Frame, now: u64) {
        p.capture(f, &FixedClock(now)).expect("capture");
    }

    #[test]
    fn stamp_is_readable_and_fields_set() {
        for (w, h) in [(640, 480), (352, 288), (64, 32), (1280, 720), (66, 34)] {
            let mut p = TestPattern::new(w, h, 30, 1).expect("valid size");
            let mut f = I420Frame::new(w, h);
            for i in 0..3u64 {
                capture(&mut p, &mut f, NOW + i * 33_333);
                assert_eq!(f.seq, i);
                assert_eq!(f.capture_us, NOW + i * 33_333);
                let got = read_stamp(f.planes().0, w as usize, w, h);
                assert_eq!(got, Some(NOW + i * 33_333), "{w}x{h}");
            }
        }
    }

    #[test]
    fn rotated_180_the_picture_turns_and_the_stamp_still_reads() {
        let (w, h) = (640u32, 480u32);
        let mut upright = TestPattern::new(w, h, 30, 1).expect("valid size");
        let turned = Orientation::new(false, false, 180).expect("180");
        let mut rotated = TestPattern::new(w, h, 30, 1)
            .expect("valid size")
            .with_orientation(turned);
        let (mut a, mut b) = (I420Frame::new(w, h), I420Frame::new(w, h));
        capture(&mut upright, &mut a, NOW);
        capture(&mut rotated, &mut b, NOW);
        // The stamp is drawn after the flip: it reads, at the top, as it does upright.
        assert_eq!(read_stamp(b.planes().0, w as usize, w, h), Some(NOW));
        // Below the stamp's rows, the picture is the upright one turned half a circle: the
        // frame-number box drawn near the top left is now near the bottom right.
        let (ya, yb) = (a.planes().0, b.planes().0);
        let (wu, hu) = (w as usize, h as usize);
        let mut same = 0usize;
        let mut total = 0usize;
        let rows = STAMP_ROWS as usize;
        for y in rows..hu - rows {
            for x in 0..wu {
                total += 1;
                same += usize::from(yb[y * wu + x] == ya[(hu - 1 - y) * wu + (wu - 1 - x)]);
            }
        }
        assert_eq!(
            same, total,
            "the rotated picture is not the upright one turned"
        );
    }

    #[test]
    fn consecutive_frames_differ_outside_the_stamp() {
        let mut p = TestPattern::new(640, 480, 30, 1).expect("valid size");
        let mut a = I420Frame::new(640, 480);
        let mut b = I420Frame::new(640, 480);
        capture(&mut p, &mut a, NOW);
        capture(&mut p, &mut b, NOW);
        let below = 16 * 640;
        let (ya, ua, va) = a.planes();
        let (yb, ub, vb) = b.planes();
        assert_eq!(ya[..below], yb[..below], "same time, same stamp");
        let changed = ya[below..]
            .iter()
            .zip(&yb[below..])
            .filter(|(x, y)| x != y)
            .count();
        assert!(changed > 640 * 464 / 2, "only {changed} luma pixels moved");
        assert_ne!(ua[8 * 320..], ub[8 * 320..]);
        assert_ne!(va[8 * 320..], vb[8 * 320..]);
    }

    #[test]
    fn many_frames_stay_in_bounds() {
        // Exercises the bouncing and scrolling over several periods at awkward sizes.
        for (w, h) in [(64, 32), (98, 50), (640, 480)] {
            let mut p = TestPattern::new(w, h, 30, 1).expect("valid size");
            let mut f = I420Frame::new(w, h);
            for i in 0..600 {
                capture(&mut p, &mut f, i);
            }
            assert_eq!(f.seq, 599);
        }
    }

    #[test]
    fn shows_the_frame_number() {
        let mut p = TestPattern::new(640, 480, 30, 1).expect("valid size");
        let mut f = I420Frame::new(640, 480);
        capture(&mut p, &mut f, NOW);
        let mut expected = I420Frame::new(640, 480);
        digits::draw_number(expected.planes_mut().0, 640, 16, 40, 6, 0, 235, 16);
        // The number box (7*6 x 9*6 at (16, 40)) matches a standalone drawing of "0".
        let (y, _, _) = f.planes();
        let (e, _, _) = expected.planes();
        for row in 40..40 + 54 {
            let span = row * 640 + 16..row * 640 + 16 + 42;
            assert_eq!(y[span.clone()], e[span], "row {row}");
        }
    }

    #[test]
    fn rejects_bad_sizes_and_rates() {
        for (w, h) in [
            (0, 0),
            (63, 480),
            (62, 480),
            (640, 30),
            (641, 480),
            (640, 481),
        ] {
            let err = TestPattern::new(w, h, 30, 1).expect_err("invalid size");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("640x480"), "{err}");
        }
        assert!(TestPattern::new(16384, 480, 30, 1).is_err());
        let err = TestPattern::new(640, 480, 0, 1).expect_err("zero rate");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(TestPattern::new(640, 480, 30, 0).is_err());
    }

    #[test]
    fn rejects_wrong_frame_size() {
        let mut p = TestPattern::new(640, 480, 30, 1).expect("valid size");
        let mut f = I420Frame::new(320, 240);
        let err = p.capture(&mut f, &FixedClock(0)).expect_err("wrong size");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("info()"));
    }

    #[test]
    fn info_and_pacing() {
        let p = TestPattern::new(640, 480, 30000, 1001).expect("valid size");
        let info = p.info();
        assert_eq!(info.kind, "test-pattern");
        assert_eq!((info.width, info.height), (640, 480));
        assert_eq!((info.fps_num, info.fps_den), (30000, 1001));
        assert_eq!(p.pacing(), Pacing::Free);
    }
}
