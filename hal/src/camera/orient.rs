//! Orientation: `[source] hflip`, `vflip` and `rotation = 0|180` for a camera mounted sideways
//! or upside down.
//!
//! A rotation of 180 degrees is a horizontal and a vertical flip together, so the three settings
//! reduce to two flags ([`Orientation`]). A source that can do it itself does: `rpicam-vid`
//! (`--hflip`, `--vflip`, done by the ISP at no cost), the test pattern (it flips its picture and
//! then draws the latency stamp, so the stamp still reads). Every other source is wrapped in
//! [`Oriented`], which flips each captured frame in place ([`apply`]): 41 µs per 640x480 frame
//! for a mirror or a half turn, 10 µs for an upside-down flip, on one x86_64 core (`cargo bench
//! -p sutantra-hal --bench orient`; a frame copy is 14 µs), and nothing when no flag is set.

// Fed frames of any size: no indexing, slicing or arithmetic that can panic.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, WallClock};
use crate::frame::I420Frame;

/// Which flips a picture needs. `rotation = 180` sets both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Orientation {
    /// Mirror left to right.
    pub hflip: bool,
    /// Mirror top to bottom.
    pub vflip: bool,
}

impl Orientation {
    /// From the `[source]` keys; `rotation` must be 0 or 180 (a 90-degree turn would change the
    /// picture's size, which the stream's negotiated size does not allow).
    pub fn new(hflip: bool, vflip: bool, rotation: u32) -> Result<Self, CameraError> {
        let turn = match rotation {
            0 => false,
            180 => true,
            other => {
                return Err(CameraError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "rotation = {other} is not supported: use 0 or 180 (with hflip/vflip for \
                         mirrored mounts)"
                    ),
                ));
            }
        };
        Ok(Self {
            hflip: hflip != turn,
            vflip: vflip != turn,
        })
    }

    /// Whether the picture is left as it is.
    pub fn is_identity(self) -> bool {
        !self.hflip && !self.vflip
    }
}

/// Flips `frame` in place as `o` says.
pub fn apply(frame: &mut I420Frame, o: Orientation) {
    if o.is_identity() {
        return;
    }
    let (w, cw) = (frame.width() as usize, frame.chroma_width() as usize);
    let (y, u, v) = frame.planes_mut();
    flip_plane(y, w, o);
    flip_plane(u, cw, o);
    flip_plane(v, cw, o);
}

/// One plane of rows `width` bytes long, packed (I420Frame's planes have no padding).
fn flip_plane(plane: &mut [u8], width: usize, o: Orientation) {
    if width == 0 {
        return;
    }
    match (o.hflip, o.vflip) {
        (false, false) => {}
        // Both: the whole plane read backwards is the picture turned half a circle.
        (true, true) => plane.reverse(),
        (true, false) => plane.chunks_exact_mut(width).for_each(|row| row.reverse()),
        (false, true) => {
            let rows = plane.len().checked_div(width).unwrap_or(0);
            let (top, bottom) = plane.split_at_mut(rows.saturating_div(2).saturating_mul(width));
            // With an odd row count the middle row stays where it is.
            let bottom_start = bottom.len().saturating_sub(top.len());
            let bottom = bottom.get_mut(bottom_start..).unwrap_or_default();
            for (a, b) in top
                .chunks_exact_mut(width)
                .zip(bottom.chunks_exact_mut(width).rev())
            {
                a.swap_with_slice(b);
            }
        }
    }
}

/// A source whose frames are flipped after capture (for sources that cannot do it themselves).
pub struct Oriented<S> {
    inner: S,
    orientation: Orientation,
}

impl<S> std::fmt::Debug for Oriented<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oriented")
            .field("orientation", &self.orientation)
            .finish_non_exhaustive()
    }
}

impl<S: FrameSource> Oriented<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, orientation: Orientation) -> Self {
        Self { inner, orientation }
    }
}

impl<S: FrameSource> FrameSource for Oriented<S> {
    fn info(&self) -> SourceInfo {
        let mut info = self.inner.info();
        let o = self.orientation;
        let how = match (o.hflip, o.vflip) {
            (true, true) => "rotated 180",
            (true, false) => "flipped horizontally",
            (false, true) => "flipped vertically",
            (false, false) => return info,
        };
        info.description = format!("{} ({how} by the node)", info.description);
        info
    }

    fn pacing(&self) -> Pacing {
        self.inner.pacing()
    }

    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        self.inner.capture(frame, clock)?;
        apply(frame, self.orientation);
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<(), CameraError> {
        Box::new(self.inner).close()
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// A 4x3 frame whose luma samples are their own index (row * 4 + col), chroma likewise.
    fn numbered(w: u32, h: u32) -> I420Frame {
        let mut f = I420Frame::new(w, h);
        let (y, u, v) = f.planes_mut();
        for (i, p) in y.iter_mut().enumerate() {
            *p = i as u8;
        }
        for (i, p) in u.iter_mut().enumerate() {
            *p = 100 + i as u8;
        }
        for (i, p) in v.iter_mut().enumerate() {
            *p = 200 + i as u8;
        }
        f
    }

    fn at(f: &I420Frame, x: usize, y: usize) -> u8 {
        f.planes().0[y * f.width() as usize + x]
    }

    #[test]
    fn rotation_is_both_flips_and_only_0_or_180() {
        let o = Orientation::new(false, false, 180).expect("180");
        assert_eq!((o.hflip, o.vflip), (true, true));
        let o = Orientation::new(true, false, 180).expect("180 + hflip");
        assert_eq!((o.hflip, o.vflip), (false, true));
        assert!(Orientation::new(false, false, 0).expect("0").is_identity());
        for bad in [90, 270, 45, 360] {
            let e = Orientation::new(false, false, bad).expect_err("only 0/180");
            assert_eq!(e.kind(), ErrorKind::InvalidInput);
            assert!(e.to_string().contains("use 0 or 180"), "{e}");
        }
    }

    #[test]
    fn each_flip_moves_every_sample_where_the_mount_expects_it() {
        // Odd height (3 rows of luma, 2 of chroma) and odd width, to cover the middle row.
        let (w, h) = (5usize, 3usize);
        let src = numbered(w as u32, h as u32);
        for (hflip, vflip) in [(true, false), (false, true), (true, true)] {
            let mut f = src.clone();
            apply(&mut f, Orientation { hflip, vflip });
            for y in 0..h {
                for x in 0..w {
                    let sx = if hflip { w - 1 - x } else { x };
                    let sy = if vflip { h - 1 - y } else { y };
                    assert_eq!(
                        at(&f, x, y),
                        at(&src, sx, sy),
                        "({hflip},{vflip}) at {x},{y}"
                    );
                }
            }
            let (cw, ch) = (src.chroma_width() as usize, src.chroma_height() as usize);
            for y in 0..ch {
                for x in 0..cw {
                    let sx = if hflip { cw - 1 - x } else { x };
                    let sy = if vflip { ch - 1 - y } else { y };
                    assert_eq!(f.planes().1[y * cw + x], src.planes().1[sy * cw + sx]);
                    assert_eq!(f.planes().2[y * cw + x], src.planes().2[sy * cw + sx]);
                }
            }
            // Twice is the identity.
            apply(&mut f, Orientation { hflip, vflip });
            assert_eq!(f.data(), src.data());
        }
    }
}
