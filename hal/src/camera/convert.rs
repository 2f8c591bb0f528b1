//! Pixel format conversion from what cameras deliver to I420.
//!
//! V4L2 devices hand out pictures in their native layout (planar YU12/YV12, semi-planar
//! NV12/NV21, packed 4:2:2 YUYV/YVYU/UYVY), with rows padded to `bytesperline`. The rest of the
//! node only knows [`I420Frame`], so this module owns turning one into the other, honouring the
//! source stride and checking every length first: a short or odd buffer from a driver is an
//! [`ErrorKind::InvalidInput`] error, never a panic. It is pure code, so it is tested here
//! without a device; [`PixelFormat`] is what the V4L2 source negotiates with.
//!
//! Packed 4:2:2 chroma is brought to 4:2:0 by averaging the two source rows (rounding up).

// Fed by a camera driver (any size, stride and length): no indexing, slicing or arithmetic that
// can panic. Sizes are computed once per frame with checked arithmetic and compared with the
// buffer before anything is copied; the per-pixel loops then walk rows cut with `get` and
// fixed-size chunks (`as_chunks`) zipped with the destination rows, which cannot go out of
// bounds and which the compiler still vectorises. Fuzzed by `fuzz/fuzz_targets/convert.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::{CameraError, ErrorKind};
use crate::frame::I420Frame;

/// A camera pixel format this module converts to I420.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// `YU12` (I420): Y plane, then U, then V; chroma stride = stride / 2.
    Yu12,
    /// `YV12`: Y plane, then V, then U; chroma stride = stride / 2.
    Yv12,
    /// `NV12`: Y plane, then one interleaved UV plane with the same stride.
    Nv12,
    /// `NV21`: Y plane, then one interleaved VU plane with the same stride.
    Nv21,
    /// `YUYV` (YUY2): packed 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// `UYVY`: packed 4:2:2, U Y0 V Y1.
    Uyvy,
    /// `YVYU`: packed 4:2:2, Y0 V Y1 U.
    Yvyu,
}

impl PixelFormat {
    /// The formats in the order a source should prefer them: 4:2:0 first (no chroma work),
    /// planar before semi-planar (plain copies), then packed 4:2:2.
    pub const PREFERENCE: [PixelFormat; 7] = [
        PixelFormat::Yu12,
        PixelFormat::Yv12,
        PixelFormat::Nv12,
        PixelFormat::Nv21,
        PixelFormat::Yuyv,
        PixelFormat::Uyvy,
        PixelFormat::Yvyu,
    ];

    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Yu12 => *b"YU12",
            PixelFormat::Yv12 => *b"YV12",
            PixelFormat::Nv12 => *b"NV12",
            PixelFormat::Nv21 => *b"NV21",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Uyvy => *b"UYVY",
            PixelFormat::Yvyu => *b"YVYU",
        }
    }

    /// The format with this four-character code, if it is one this module converts.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        Self::PREFERENCE.into_iter().find(|f| f.fourcc() == code)
    }

    /// The smallest row stride (bytes per line) of a picture `width` pixels wide.
    pub fn min_stride(self, width: u32) -> usize {
        match self {
            // Two bytes per pixel; saturates only where usize is 32 bits and the width is over
            // 2^31, a row no buffer can hold, so the length check still refuses it.
            PixelFormat::Yuyv | PixelFormat::Uyvy | PixelFormat::Yvyu => {
                (width as usize).saturating_mul(2)
            }
            _ => width as usize,
        }
    }

    /// Converts one picture in this format (rows `src_stride` bytes apart) into `dst`.
    pub fn to_i420(
        self,
        src: &[u8],
        src_stride: usize,
        width: u32,
        height: u32,
        dst: &mut I420Frame,
    ) -> Result<(), CameraError> {
        match self {
            PixelFormat::Yu12 => yu12_to_i420(src, src_stride, width, height, dst),
            PixelFormat::Yv12 => yv12_to_i420(src, src_stride, width, height, dst),
            PixelFormat::Nv12 => nv12_to_i420(src, src_stride, width, height, dst),
            PixelFormat::Nv21 => nv21_to_i420(src, src_stride, width, height, dst),
            PixelFormat::Yuyv => yuyv_to_i420(src, src_stride, width, height, dst),
            PixelFormat::Uyvy => uyvy_to_i420(src, src_stride, width, height, dst),
            PixelFormat::Yvyu => yvyu_to_i420(src, src_stride, width, height, dst),
        }
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.fourcc();
        f.write_str(std::str::from_utf8(&code).unwrap_or("????"))
    }
}

fn invalid(message: String) -> CameraError {
    CameraError::new(ErrorKind::InvalidInput, message)
}

/// The error for a size that does not fit in `usize`.
fn overflow(format: &str) -> CameraError {
    invalid(format!(
        "{format} picture size overflows: the driver reported an impossible format"
    ))
}

/// Checks that `dst` is `width` x `height` and that neither is zero.
fn check_dst(width: u32, height: u32, dst: &I420Frame) -> Result<(), CameraError> {
    if width == 0 || height == 0 {
        return Err(invalid(format!(
            "cannot convert an empty {width}x{height} picture"
        )));
    }
    if dst.width() != width || dst.height() != height {
        return Err(invalid(format!(
            "cannot convert a {width}x{height} picture into a {}x{} frame: allocate frames with \
             the source's negotiated size",
            dst.width(),
            dst.height()
        )));
    }
    Ok(())
}

fn check_stride(format: &str, stride: usize, min: usize) -> Result<(), CameraError> {
    if stride < min {
        return Err(invalid(format!(
            "{format} stride {stride} is smaller than a row ({min} bytes): the driver reported \
             an inconsistent format"
        )));
    }
    Ok(())
}

fn check_len(format: &str, len: usize, needed: Option<usize>) -> Result<(), CameraError> {
    match needed {
        Some(needed) if len >= needed => Ok(()),
        Some(needed) => Err(invalid(format!(
            "{format} buffer is {len} bytes but the picture needs {needed}: the device \
             delivered a short frame"
        ))),
        None => Err(overflow(format)),
    }
}

/// The first `width` bytes of each row of `src` (rows `stride` apart), as long as rows that
/// long remain. After [`check_len`] there are at least as many as the picture has rows.
fn rows(src: &[u8], stride: usize, width: usize) -> impl Iterator<Item = &[u8]> {
    src.chunks(stride).map_while(move |row| row.get(..width))
}

/// Copies rows of `width` bytes from `src` (rows `stride` apart) into the packed `dst` until
/// `dst` is full; `src` holds at least that many rows (checked by the caller).
fn copy_plane(src: &[u8], stride: usize, dst: &mut [u8], width: usize) {
    if stride == width {
        // Unpadded: one copy.
        if let Some(src) = src.get(..dst.len()) {
            dst.copy_from_slice(src);
        }
        return;
    }
    for (d, s) in dst.chunks_exact_mut(width).zip(rows(src, stride, width)) {
        d.copy_from_slice(s);
    }
}

/// Planar 4:2:0 with the chroma planes in `first`, `second` order (`u_first` for YU12).
fn planar_to_i420(
    format: &str,
    u_first: bool,
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    check_dst(width, height, dst)?;
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    check_stride(format, src_stride, w)?;
    let c_stride = src_stride.div_ceil(2);
    // Y plane, one full chroma plane, then the rows of the last one (its last row unpadded).
    let y_size = src_stride.checked_mul(h);
    let c_size = c_stride.checked_mul(ch);
    let second_at = y_size.and_then(|y| y.checked_add(c_size?));
    let needed = second_at
        .and_then(|at| at.checked_add(c_stride.checked_mul(ch.checked_sub(1)?)?))
        .and_then(|n| n.checked_add(cw));
    check_len(format, src.len(), needed)?;
    // Within `needed`, so these cannot fail.
    let (Some(y_size), Some(c_size)) = (y_size, c_size) else {
        return Err(overflow(format));
    };
    let Some((y_src, (first, second))) = src
        .split_at_checked(y_size)
        .and_then(|(y_src, rest)| Some((y_src, rest.split_at_checked(c_size)?)))
    else {
        return Err(overflow(format));
    };

    let (y, u, v) = dst.planes_mut();
    copy_plane(y_src, src_stride, y, w);
    let (to_first, to_second) = if u_first { (u, v) } else { (v, u) };
    copy_plane(first, c_stride, to_first, cw);
    copy_plane(second, c_stride, to_second, cw);
    Ok(())
}

/// Converts planar `YU12` (I420 with padded rows): Y rows `src_stride` apart, then U and V
/// with rows `src_stride / 2` apart (rounded up), as V4L2 lays it out in one buffer.
pub fn yu12_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    planar_to_i420("YU12", true, src, src_stride, width, height, dst)
}

/// Converts planar `YV12`: like [`yu12_to_i420`] with V before U.
pub fn yv12_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    planar_to_i420("YV12", false, src, src_stride, width, height, dst)
}

/// Semi-planar 4:2:0: Y plane, then interleaved chroma pairs with the same stride.
fn semi_planar_to_i420(
    format: &str,
    u_first: bool,
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    check_dst(width, height, dst)?;
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let pair_bytes = cw.checked_mul(2).ok_or_else(|| overflow(format))?;
    check_stride(format, src_stride, pair_bytes)?;
    let y_size = src_stride.checked_mul(h);
    let needed = y_size
        .and_then(|y| y.checked_add(src_stride.checked_mul(ch.checked_sub(1)?)?))
        .and_then(|n| n.checked_add(pair_bytes));
    check_len(format, src.len(), needed)?;
    // Within `needed`, so this cannot fail.
    let Some((y_src, c_src)) = y_size.and_then(|y_size| src.split_at_checked(y_size)) else {
        return Err(overflow(format));
    };

    let (y, u, v) = dst.planes_mut();
    copy_plane(y_src, src_stride, y, w);
    let (a, b) = if u_first { (u, v) } else { (v, u) };
    let rows =
        rows(c_src, src_stride, pair_bytes).zip(a.chunks_exact_mut(cw).zip(b.chunks_exact_mut(cw)));
    for (pairs, (a_row, b_row)) in rows {
        // `pair_bytes` is even: no remainder.
        let (pairs, _) = pairs.as_chunks::<2>();
        for (&[first, second], (a, b)) in pairs.iter().zip(a_row.iter_mut().zip(b_row.iter_mut())) {
            *a = first;
            *b = second;
        }
    }
    Ok(())
}

/// Converts semi-planar `NV12`: Y rows `src_stride` apart, then one plane of interleaved U, V
/// pairs with the same stride (V4L2's single-buffer layout).
pub fn nv12_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    semi_planar_to_i420("NV12", true, src, src_stride, width, height, dst)
}

/// Converts semi-planar `NV21`: like [`nv12_to_i420`] with V, U pairs.
pub fn nv21_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    semi_planar_to_i420("NV21", false, src, src_stride, width, height, dst)
}

/// The average of two samples, rounding up. The sum plus one is at most 511, so it cannot wrap
/// in a u16 and the result fits in a u8; written as `(a + b + 1) / 2` because the compiler turns
/// that into one rounding-average instruction (NEON `urhadd`, SSE2 `pavgb`).
#[inline]
fn avg(a: u8, b: u8) -> u8 {
    (u16::from(a).wrapping_add(u16::from(b)).wrapping_add(1) / 2) as u8
}

/// Packed 4:2:2; `order` turns one 4-byte macropixel of the format into Y0, U, Y1, V.
fn packed_to_i420(
    format: &str,
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
    order: impl Fn([u8; 4]) -> [u8; 4],
) -> Result<(), CameraError> {
    check_dst(width, height, dst)?;
    if !width.is_multiple_of(2) {
        return Err(invalid(format!(
            "{format} pictures must have an even width, got {width}"
        )));
    }
    let (w, h) = (width as usize, height as usize);
    let cw = w / 2;
    let row_bytes = w.checked_mul(2).ok_or_else(|| overflow(format))?;
    check_stride(format, src_stride, row_bytes)?;
    let needed = h
        .checked_sub(1)
        .and_then(|rows| src_stride.checked_mul(rows))
        .and_then(|n| n.checked_add(row_bytes));
    check_len(format, src.len(), needed)?;

    let (y, u, v) = dst.planes_mut();
    let mut src_rows = rows(src, src_stride, row_bytes);
    let mut y_rows = y.chunks_exact_mut(w);
    for (u_row, v_row) in u.chunks_exact_mut(cw).zip(v.chunks_exact_mut(cw)) {
        let (Some(top), Some(y_top)) = (src_rows.next(), y_rows.next()) else {
            break;
        };
        // `row_bytes` is 4 * `cw` and `w` is 2 * `cw`: no remainders.
        let (top, _) = top.as_chunks::<4>();
        let (y_top, _) = y_top.as_chunks_mut::<2>();
        if let (Some(bottom), Some(y_bottom)) = (src_rows.next(), y_rows.next()) {
            // Two source rows: luma copied, chroma averaged.
            let (bottom, _) = bottom.as_chunks::<4>();
            let (y_bottom, _) = y_bottom.as_chunks_mut::<2>();
            let pixels = top
                .iter()
                .zip(bottom)
                .zip(y_top.iter_mut().zip(y_bottom.iter_mut()))
                .zip(u_row.iter_mut().zip(v_row.iter_mut()));
            for (((&t, &b), (yt, yb)), (u, v)) in pixels {
                let [t_y0, t_u, t_y1, t_v] = order(t);
                let [b_y0, b_u, b_y1, b_v] = order(b);
                *yt = [t_y0, t_y1];
                *yb = [b_y0, b_y1];
                *u = avg(t_u, b_u);
                *v = avg(t_v, b_v);
            }
        } else {
            // Odd height: the last row has no partner; its chroma is used as it is.
            let pixels = top
                .iter()
                .zip(y_top.iter_mut())
                .zip(u_row.iter_mut().zip(v_row.iter_mut()));
            for ((&t, yt), (u, v)) in pixels {
                let [t_y0, t_u, t_y1, t_v] = order(t);
                *yt = [t_y0, t_y1];
                *u = t_u;
                *v = t_v;
            }
        }
    }
    Ok(())
}

/// Converts packed `YUYV` (Y0 U Y1 V) rows `src_stride` bytes apart; the chroma of each pair
/// of rows is their average. The width must be even.
pub fn yuyv_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    packed_to_i420(
        "YUYV",
        src,
        src_stride,
        width,
        height,
        dst,
        |[y0, u, y1, v]| [y0, u, y1, v],
    )
}

/// Converts packed `UYVY` (U Y0 V Y1); otherwise like [`yuyv_to_i420`].
pub fn uyvy_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    packed_to_i420(
        "UYVY",
        src,
        src_stride,
        width,
        height,
        dst,
        |[u, y0, v, y1]| [y0, u, y1, v],
    )
}

/// Converts packed `YVYU` (Y0 V Y1 U); otherwise like [`yuyv_to_i420`].
pub fn yvyu_to_i420(
    src: &[u8],
    src_stride: usize,
    width: u32,
    height: u32,
    dst: &mut I420Frame,
) -> Result<(), CameraError> {
    packed_to_i420(
        "YVYU",
        src,
        src_stride,
        width,
        height,
        dst,
        |[y0, v, y1, u]| [y0, u, y1, v],
    )
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32) -> I420Frame {
        let mut f = I420Frame::new(width, height);
        f.data_mut().fill(0xEE);
        f
    }

    #[test]
    fn yuyv_4x2_exact_bytes() {
        #[rustfmt::skip]
        let src = [
            // Y0 U  Y1 V   Y2 U  Y3 V
            10, 100, 11, 200, 12, 50, 13, 60,
            20, 102, 21, 203, 22, 51, 23, 70,
        ];
        let mut f = frame(4, 2);
        yuyv_to_i420(&src, 8, 4, 2, &mut f).expect("convert");
        let (y, u, v) = f.planes();
        assert_eq!(y, [10, 11, 12, 13, 20, 21, 22, 23]);
        assert_eq!(u, [101, 51]); // (100+102+1)/2, (50+51+1)/2
        assert_eq!(v, [202, 65]); // (200+203+1)/2, (60+70)/2
    }

    #[test]
    fn uyvy_and_yvyu_reorder() {
        #[rustfmt::skip]
        let uyvy = [
            100, 10, 200, 11,
            102, 20, 204, 21,
        ];
        let mut f = frame(2, 2);
        uyvy_to_i420(&uyvy, 4, 2, 2, &mut f).expect("convert");
        assert_eq!(f.planes(), (&[10, 11, 20, 21][..], &[101][..], &[202][..]));

        #[rustfmt::skip]
        let yvyu = [
            10, 200, 11, 100,
            20, 204, 21, 102,
        ];
        let mut f = frame(2, 2);
        yvyu_to_i420(&yvyu, 4, 2, 2, &mut f).expect("convert");
        assert_eq!(f.planes(), (&[10, 11, 20, 21][..], &[101][..], &[202][..]));
    }

    #[test]
    fn yuyv_with_padded_stride_and_odd_height() {
        #[rustfmt::skip]
        let src = [
            1, 100, 2, 200, 0xFF, 0xFF,
            3, 110, 4, 210, 0xFF, 0xFF,
            5, 120, 6, 220, // last row: no padding needed
        ];
        let mut f = frame(2, 3);
        yuyv_to_i420(&src, 6, 2, 3, &mut f).expect("convert");
        let (y, u, v) = f.planes();
        assert_eq!(y, [1, 2, 3, 4, 5, 6]);
        assert_eq!(u, [105, 120]);
        assert_eq!(v, [205, 220]);
    }

    #[test]
    fn nv12_and_nv21_with_stride() {
        #[rustfmt::skip]
        let src = [
            1, 2, 3, 4, 0xFF, 0xFF,
            5, 6, 7, 8, 0xFF, 0xFF,
            100, 200, 101, 201, // UV row, last row unpadded
        ];
        let mut f = frame(4, 2);
        nv12_to_i420(&src, 6, 4, 2, &mut f).expect("convert");
        assert_eq!(
            f.planes(),
            (
                &[1, 2, 3, 4, 5, 6, 7, 8][..],
                &[100, 101][..],
                &[200, 201][..]
            )
        );
        let mut f = frame(4, 2);
        nv21_to_i420(&src, 6, 4, 2, &mut f).expect("convert");
        assert_eq!(f.planes().1, [200, 201]);
        assert_eq!(f.planes().2, [100, 101]);
    }

    #[test]
    fn yu12_and_yv12_with_stride() {
        #[rustfmt::skip]
        let src = [
            // Y, stride 6
            1, 2, 3, 4, 0xFF, 0xFF,
            5, 6, 7, 8, 0xFF, 0xFF,
            9, 10, 11, 12, 0xFF, 0xFF,
            13, 14, 15, 16, 0xFF, 0xFF,
            // first chroma plane, stride 3
            100, 101, 0xFF,
            102, 103, 0xFF,
            // second chroma plane
            200, 201, 0xFF,
            202, 203, // last row unpadded
        ];
        let mut f = frame(4, 4);
        yu12_to_i420(&src, 6, 4, 4, &mut f).expect("convert");
        let (y, u, v) = f.planes();
        assert_eq!(y, (1..=16).collect::<Vec<u8>>());
        assert_eq!(u, [100, 101, 102, 103]);
        assert_eq!(v, [200, 201, 202, 203]);
        let mut f = frame(4, 4);
        yv12_to_i420(&src, 6, 4, 4, &mut f).expect("convert");
        assert_eq!(f.planes().1, [200, 201, 202, 203]);
        assert_eq!(f.planes().2, [100, 101, 102, 103]);

        // Unpadded: a straight copy.
        let mut i420 = frame(4, 2);
        i420.data_mut()
            .iter_mut()
            .enumerate()
            .for_each(|(i, p)| *p = i as u8);
        let mut f = frame(4, 2);
        yu12_to_i420(i420.data(), 4, 4, 2, &mut f).expect("convert");
        assert_eq!(f, i420);
    }

    /// I420 to YUYV, duplicating each chroma row for both luma rows (test helper).
    fn i420_to_yuyv(f: &I420Frame) -> Vec<u8> {
        let (w, h) = (f.width() as usize, f.height() as usize);
        let (y, u, v) = f.planes();
        let mut out = Vec::with_capacity(2 * w * h);
        for r in 0..h {
            for c in 0..w / 2 {
                let ci = (r / 2) * (w / 2) + c;
                out.extend_from_slice(&[y[r * w + 2 * c], u[ci], y[r * w + 2 * c + 1], v[ci]]);
            }
        }
        out
    }

    #[test]
    fn i420_yuyv_round_trip() {
        let (w, h) = (64u32, 48u32);
        let mut original = I420Frame::new(w, h);
        let mut x = 12345u32;
        for p in original.data_mut() {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *p = (x >> 16) as u8;
        }
        let yuyv = i420_to_yuyv(&original);
        let mut back = I420Frame::new(w, h);
        yuyv_to_i420(&yuyv, 2 * w as usize, w, h, &mut back).expect("convert");
        assert_eq!(back, original);
    }

    #[test]
    fn short_buffers_and_bad_sizes_are_errors() {
        let mut f = frame(4, 2);
        let cases: [(PixelFormat, usize, usize); 7] = [
            (PixelFormat::Yuyv, 8, 15),
            (PixelFormat::Uyvy, 8, 0),
            (PixelFormat::Yvyu, 8, 7),
            (PixelFormat::Nv12, 4, 11),
            (PixelFormat::Nv21, 4, 11),
            (PixelFormat::Yu12, 4, 11),
            (PixelFormat::Yv12, 4, 11),
        ];
        for (format, stride, len) in cases {
            let buf = vec![0u8; len];
            let err = format
                .to_i420(&buf, stride, 4, 2, &mut f)
                .expect_err("short buffer");
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{format}");
            assert!(err.to_string().contains("short frame"), "{format}: {err}");
        }
        let big = vec![0u8; 1 << 12];
        for format in PixelFormat::PREFERENCE {
            // Stride smaller than a row.
            assert!(format.to_i420(&big, 1, 4, 2, &mut f).is_err(), "{format}");
            // Frame of another size, and an empty picture.
            assert!(format.to_i420(&big, 8, 8, 2, &mut f).is_err(), "{format}");
            assert!(format.to_i420(&big, 8, 0, 0, &mut f).is_err(), "{format}");
            // Huge strides overflow instead of panicking.
            let err = format
                .to_i420(&big, usize::MAX / 2, 4, 2, &mut f)
                .expect_err("overflow");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            // A good buffer converts.
            let stride = format.min_stride(4);
            assert!(
                format.to_i420(&big, stride, 4, 2, &mut f).is_ok(),
                "{format}"
            );
        }
        // Packed formats need an even width.
        let mut odd = frame(3, 2);
        assert!(yuyv_to_i420(&big, 8, 3, 2, &mut odd).is_err());
    }

    #[test]
    fn fourcc_round_trip() {
        for format in PixelFormat::PREFERENCE {
            assert_eq!(PixelFormat::from_fourcc(format.fourcc()), Some(format));
            assert_eq!(format.to_string().as_bytes(), format.fourcc());
        }
        assert_eq!(PixelFormat::from_fourcc(*b"MJPG"), None);
    }
}
