//! MJPEG: decoding the JPEG frames of a Motion-JPEG camera into I420.
//!
//! Many USB webcams (UVC) deliver 640x480 and above at 30 fps only as MJPEG, because raw YUYV
//! at that size and rate does not fit USB 2.0's isochronous bandwidth. The V4L2 source
//! negotiates MJPEG only when no raw format gives the requested size and rate (see
//! `super::v4l2`), and hands each dequeued buffer to [`MjpegDecoder::decode`].
//!
//! The decoder is `zune-jpeg` (pure Rust, maintained; its SIMD paths for x86 AVX2 and aarch64
//! NEON are the only `unsafe` in it, chosen at run time by CPU feature detection). Measured on
//! x86_64 against `jpeg-decoder` (maintenance mode) on a 640x480 4:2:2 frame: 0.8 ms against
//! 3.3 ms (README.md, "Cameras"); `jpeg-decoder` 0.3.2 also panics when asked for YCbCr output.
//! libjpeg-turbo (C, through `turbojpeg`) would decode straight to planar YUV, but brings a C
//! library to cross-build for every board; not measured.
//! zune-jpeg (0.5) upsamples chroma to 4:4:4 and interleaves it, with no way to get the coded
//! planes; this module then averages each 2x2 block of chroma down to 4:2:0, undoes to first
//! order the blur that upsampling and averaging back leave along a subsampled axis (see
//! `unblur_rows`), and maps JPEG's full range (0-255) to the video range the rest of the node
//! and VP8 use (luma 16-235, chroma 16-240), as ffmpeg's `-pix_fmt yuv420p` does. Luma matches
//! ffmpeg's decode within 1; chroma differs where ffmpeg resamples with another filter.
//! Baseline JPEG in 4:2:0, 4:2:2 and 4:4:4, and greyscale, at any size (odd ones too: the last
//! chroma column and row average what there is).
//!
//! Webcam MJPEG often leaves out the Huffman tables (no DHT segment): AVI1 MJPEG is defined to
//! use the standard tables of ITU T.81 Annex K.3. zune-jpeg fills them in only when the frame
//! carries the `AVI1` APP0 tag, which not every camera writes, so a frame with no DHT before its
//! scan gets [`STANDARD_DHT`] inserted right before the SOS marker (into a scratch buffer kept
//! between frames).
//!
//! A corrupt or truncated frame (USB transfer errors on a busy bus, a camera dropping packets)
//! is an [`ErrorKind::CorruptFrame`] error: the capture loop drops that one frame and counts it
//! (`sutantra_camera_corrupt_frames_total`), the camera stays open. The decoder runs in strict
//! mode, so a frame that ends early, carries an invalid Huffman code or a stray marker is an
//! error rather than a picture half grey; damage that still forms a valid bit stream cannot be
//! told apart (JPEG has no checksum) and shows as a glitch in that one frame. A panic inside the
//! decoder (a bug met on odd input) is caught and reported as a corrupt frame too.
//!
//! Buffers: the 4:4:4 output, the scratch frame and two chroma rows are allocated once and
//! reused. The decoder itself allocates its work buffers (per-component rows, its tables) for
//! each frame: zune-jpeg has no API to keep them from one image to the next.

// Fed by a camera (any bytes): no indexing, slicing or arithmetic that can panic. The marker walk
// uses `get` and checked arithmetic; the per-pixel loops walk rows cut with `get` and fixed-size
// chunks. Fuzzed by `fuzz/fuzz_targets/mjpeg.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::{CameraError, ErrorKind};
use crate::frame::I420Frame;

/// The V4L2 four-character code of Motion-JPEG.
pub const FOURCC: [u8; 4] = *b"MJPG";

/// One DHT segment (marker included) with the four Huffman tables of ITU T.81 Annex K.3: DC
/// luminance (K.3), DC chrominance (K.4), AC luminance (K.5), AC chrominance (K.6). These are the
/// tables AVI1 MJPEG implies when a frame carries none (the OpenDML spec), byte for byte the
/// segment ffmpeg writes with `-huffman default`; the test
/// `inserted_tables_decode_like_the_original` checks them against such a file.
pub const STANDARD_DHT: [u8; 420] = [
    0xff, 0xc4, 0x01, 0xa2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
    0x0b, 0x01, 0x00, 0x03, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x10, 0x00,
    0x02, 0x01, 0x03, 0x03, 0x02, 0x04, 0x03, 0x05, 0x05, 0x04, 0x04, 0x00, 0x00, 0x01, 0x7d, 0x01,
    0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22,
    0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24,
    0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29,
    0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a,
    0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a,
    0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
    0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
    0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6,
    0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3,
    0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9,
    0xfa, 0x11, 0x00, 0x02, 0x01, 0x02, 0x04, 0x04, 0x03, 0x04, 0x07, 0x05, 0x04, 0x04, 0x00, 0x01,
    0x02, 0x77, 0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07,
    0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33,
    0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19,
    0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x43, 0x44, 0x45, 0x46,
    0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66,
    0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85,
    0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3,
    0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba,
    0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
    0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6,
    0xf7, 0xf8, 0xf9, 0xfa,
];

/// Luma, JPEG full range to video range: `16 + y * 219 / 255`, rounded.
const LUMA: [u8; 256] = range_table(16, 219);
/// Chroma, JPEG full range to video range: `128 + (c - 128) * 224 / 255`, rounded.
const CHROMA: [u8; 256] = range_table(16, 224);

/// `table[v]`.
#[allow(clippy::indexing_slicing)] // a `u8` cannot index past 256 entries
fn map(table: &[u8; 256], v: u8) -> u8 {
    table[usize::from(v)]
}

/// `out[v] = low + round(v * span / 255)`: the full-to-video range map ffmpeg applies.
#[allow(clippy::arithmetic_side_effects, clippy::indexing_slicing)] // constant evaluation
const fn range_table(low: u32, span: u32) -> [u8; 256] {
    let mut out = [0u8; 256];
    let mut v = 0;
    while v < 256 {
        out[v] = (low + (v as u32 * span + 127) / 255) as u8;
        v += 1;
    }
    out
}

/// Decodes the MJPEG frames of one stream (one negotiated size) into I420, reusing its buffers.
pub struct MjpegDecoder {
    width: u32,
    height: u32,
    /// Pixels in a picture (`width * height`), checked once.
    pixels: usize,
    /// zune-jpeg's output: interleaved 4:4:4 YCbCr (or luma only), 3 bytes a pixel, allocated
    /// once.
    ycc: Vec<u8>,
    /// A frame with [`STANDARD_DHT`] inserted; grows to the largest such frame, then is reused.
    patched: Vec<u8>,
    /// Two chroma rows, for [`unblur_columns`].
    chroma_rows: Vec<u8>,
}

impl std::fmt::Debug for MjpegDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MjpegDecoder")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

fn corrupt(what: impl std::fmt::Display) -> CameraError {
    CameraError::new(
        ErrorKind::CorruptFrame,
        format!(
            "corrupt MJPEG frame from the camera ({what}); the frame was dropped. Now and then is \
             harmless; if it keeps happening, check the USB cable, put the camera on its own USB \
             port or a powered hub, or ask for a smaller size or rate"
        ),
    )
}

impl MjpegDecoder {
    /// A decoder for frames of `width` x `height`: allocates its output buffer (3 bytes a pixel)
    /// now, so decoding allocates no picture-sized buffer.
    ///
    /// Errors: a zero size, or one whose buffer does not fit in memory, is
    /// [`ErrorKind::InvalidInput`].
    pub fn new(width: u32, height: u32) -> Result<Self, CameraError> {
        let pixels = usize::try_from(width)
            .ok()
            .zip(usize::try_from(height).ok())
            .and_then(|(w, h)| w.checked_mul(h))
            .filter(|&p| p > 0);
        let Some((pixels, bytes)) = pixels.and_then(|p| Some((p, p.checked_mul(3)?))) else {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!("MJPEG size {width}x{height} is empty or too large; ask for another size"),
            ));
        };
        Ok(Self {
            width,
            height,
            pixels,
            ycc: vec![0; bytes],
            patched: Vec::new(),
            chroma_rows: vec![0; (width as usize).div_ceil(2).saturating_mul(2)],
        })
    }

    /// The picture width this decoder expects.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The picture height this decoder expects.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Decodes one JPEG frame into `frame` (I420, video range).
    ///
    /// Errors: `frame` not of the decoder's size → [`ErrorKind::InvalidInput`] (a caller's bug);
    /// a frame that is not a decodable baseline JPEG of the decoder's size (truncated, corrupt,
    /// another size, an unsupported colour space) → [`ErrorKind::CorruptFrame`]: drop it and
    /// take the next. Never panics.
    pub fn decode(&mut self, jpeg: &[u8], frame: &mut I420Frame) -> Result<(), CameraError> {
        if (frame.width(), frame.height()) != (self.width, self.height) {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "frame is {}x{} but the MJPEG decoder is set up for {}x{}: allocate frames \
                     with the size from info()",
                    frame.width(),
                    frame.height(),
                    self.width,
                    self.height
                ),
            ));
        }
        let headers = scan_headers(jpeg)?;
        let data = match headers.tables_missing_at {
            None => jpeg,
            Some(sos) => {
                let (head, scan) = (jpeg.get(..sos), jpeg.get(sos..));
                let (Some(head), Some(scan)) = (head, scan) else {
                    return Err(corrupt("scan start outside the frame"));
                };
                self.patched.clear();
                self.patched.extend_from_slice(head);
                self.patched.extend_from_slice(&STANDARD_DHT);
                self.patched.extend_from_slice(scan);
                &self.patched
            }
        };
        let (width, height, pixels) = (self.width, self.height, self.pixels);
        let ycc = &mut self.ycc;
        // The decoder has been fuzzed, but a panic on a camera's bytes must cost one frame, not
        // the camera: catch it here (the release build unwinds).
        let channels = catch_unwind(AssertUnwindSafe(|| {
            decode_ycc(data, width, height, pixels, ycc)
        }))
        .unwrap_or_else(|_| Err(corrupt("the JPEG decoder failed on it")))?;
        let Some(ycc) = self.ycc.get(..pixels.saturating_mul(channels)) else {
            return Err(corrupt("decoder output size"));
        };
        if channels == 1 {
            grey_to_i420(ycc, frame);
        } else {
            ycc_to_i420(ycc, frame);
            let cw = frame.chroma_width() as usize;
            let (_, u, v) = frame.planes_mut();
            for plane in [u, v] {
                if headers.subsampled.0 {
                    unblur_rows(plane, cw);
                }
                if headers.subsampled.1 {
                    unblur_columns(plane, cw, &mut self.chroma_rows);
                }
            }
        }
        Ok(())
    }
}

/// What the marker walk before the first scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Headers {
    /// Offset of the SOS marker when no DHT segment came before it: the standard tables go
    /// there.
    tables_missing_at: Option<usize>,
    /// Whether chroma is subsampled horizontally and vertically (the frame header's sampling
    /// factors: 4:2:2 is `(true, false)`, 4:2:0 `(true, true)`).
    subsampled: (bool, bool),
}

/// Walks the marker segments before the first scan: finds whether the frame carries Huffman
/// tables and how its chroma is sampled. Checks only the segment structure; the decoder checks
/// the contents.
fn scan_headers(jpeg: &[u8]) -> Result<Headers, CameraError> {
    if jpeg.get(..2) != Some(&[0xFF, 0xD8]) {
        return Err(corrupt("it does not start with a JPEG SOI marker"));
    }
    let mut found = Headers::default();
    let mut has_tables = false;
    let mut at: usize = 2;
    loop {
        if jpeg.get(at) != Some(&0xFF) {
            return Err(if at >= jpeg.len() {
                corrupt("it ends before its scan")
            } else {
                corrupt("no marker where one is due")
            });
        }
        let start = at;
        // Any number of 0xFF fill bytes may precede a marker code.
        while jpeg.get(at) == Some(&0xFF) {
            at = at.saturating_add(1);
        }
        let Some(&code) = jpeg.get(at) else {
            return Err(corrupt("it ends before its scan"));
        };
        at = at.saturating_add(1);
        match code {
            0xDA => {
                found.tables_missing_at = (!has_tables).then_some(start);
                return Ok(found);
            }
            0xD9 => return Err(corrupt("it ends (EOI) before its scan")),
            // Standalone markers: no length follows.
            0x01 | 0xD0..=0xD7 => continue,
            0x00 => return Err(corrupt("a stuffed zero where a marker is due")),
            _ => {}
        }
        let length = jpeg
            .get(at..)
            .and_then(<[u8]>::first_chunk::<2>)
            .map(|&b| usize::from(u16::from_be_bytes(b)));
        let Some(length) = length.filter(|&l| l >= 2) else {
            return Err(corrupt("a marker segment with a bad length"));
        };
        let body = jpeg.get(at.saturating_add(2)..at.saturating_add(length));
        match (code, body) {
            (0xC4, _) => has_tables = true,
            // SOF0-2: precision, height, width, component count, then (id, HV, table) each.
            (0xC0..=0xC2, Some(body)) => found.subsampled = subsampling(body),
            _ => {}
        }
        at = at.saturating_add(length);
    }
}

/// Whether the chroma of a three-component frame header (`body` of an SOF segment) is
/// subsampled horizontally and vertically; `(false, false)` for anything else.
fn subsampling(body: &[u8]) -> (bool, bool) {
    match body.get(5..) {
        Some(&[3, _, luma, _, _, chroma, ..]) => (
            luma >> 4 == (chroma >> 4).saturating_mul(2),
            luma & 0x0F == (chroma & 0x0F).saturating_mul(2),
        ),
        _ => (false, false),
    }
}

/// Decodes `data` into `out` as 4:4:4 YCbCr (3 bytes a pixel) or luma (1 byte); returns the
/// bytes per pixel. The frame must be `width` x `height`.
fn decode_ycc(
    data: &[u8],
    width: u32,
    height: u32,
    pixels: usize,
    out: &mut [u8],
) -> Result<usize, CameraError> {
    let (w, h) = (width as usize, height as usize);
    // Strict: a short frame or a bad Huffman code is an error, not a picture filled with grey.
    // The size limits stop a damaged header from making the decoder allocate for a huge picture.
    let options = DecoderOptions::default()
        .set_strict_mode(true)
        .set_max_width(w)
        .set_max_height(h)
        .jpeg_set_out_colorspace(ColorSpace::YCbCr);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
    decoder.decode_headers().map_err(corrupt)?;
    if let Some((jw, jh)) = decoder.dimensions()
        && (jw, jh) != (w, h)
    {
        return Err(corrupt(format_args!(
            "it is {jw}x{jh}, the stream was set up for {w}x{h}"
        )));
    }
    let channels = match decoder.input_colorspace() {
        Some(ColorSpace::YCbCr) => 3,
        Some(ColorSpace::Luma) => {
            decoder.set_options(options.jpeg_set_out_colorspace(ColorSpace::Luma));
            1
        }
        other => {
            return Err(corrupt(format_args!(
                "colour space {other:?}; the node decodes YCbCr and greyscale JPEG"
            )));
        }
    };
    let Some(out) = out.get_mut(..pixels.saturating_mul(channels)) else {
        return Err(corrupt("decoder output size"));
    };
    decoder.decode_into(out).map_err(corrupt)?;
    Ok(channels)
}

/// Rounded mean of four samples.
fn mean4(a: u8, b: u8, c: u8, d: u8) -> u8 {
    let sum = u16::from(a)
        .wrapping_add(u16::from(b))
        .wrapping_add(u16::from(c))
        .wrapping_add(u16::from(d))
        .wrapping_add(2);
    (sum / 4) as u8
}

/// Interleaved 4:4:4 YCbCr (full range, `frame`'s size) to I420 (video range): luma mapped
/// sample by sample, chroma averaged over each 2x2 block (an odd last column or row averages
/// itself twice).
fn ycc_to_i420(ycc: &[u8], frame: &mut I420Frame) {
    let w = frame.width() as usize;
    let row_bytes = w.saturating_mul(3);
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    let rows = ycc.chunks_exact(row_bytes.max(1));
    for (dst, src) in y_plane.chunks_exact_mut(w.max(1)).zip(rows.clone()) {
        let (px, _) = src.as_chunks::<3>();
        for (d, p) in dst.iter_mut().zip(px) {
            *d = map(&LUMA, p[0]);
        }
    }
    let cw = w.div_ceil(2);
    let mut rows = rows;
    let chroma_rows = u_plane
        .chunks_exact_mut(cw.max(1))
        .zip(v_plane.chunks_exact_mut(cw.max(1)));
    for (u_row, v_row) in chroma_rows {
        let Some(top) = rows.next() else { break };
        let bottom = rows.next().unwrap_or(top);
        let (top_pairs, top_rest) = top.as_chunks::<6>();
        let (bottom_pairs, bottom_rest) = bottom.as_chunks::<6>();
        let pairs = top_pairs.iter().zip(bottom_pairs);
        let mut uv = u_row.iter_mut().zip(v_row.iter_mut());
        for ((t, b), (u, v)) in pairs.zip(&mut uv) {
            *u = map(&CHROMA, mean4(t[1], t[4], b[1], b[4]));
            *v = map(&CHROMA, mean4(t[2], t[5], b[2], b[5]));
        }
        // An odd width leaves one pixel per row: it stands for both columns.
        if let (Some((u, v)), [_, tu, tv], [_, bu, bv]) = (uv.next(), top_rest, bottom_rest) {
            *u = map(&CHROMA, mean4(*tu, *tu, *bu, *bu));
            *v = map(&CHROMA, mean4(*tv, *tv, *bv, *bv));
        }
    }
}

/// `c + (2c - before - after) / 8`, rounded, kept in the video range of chroma (16-240).
fn unblur(before: u8, c: u8, after: u8) -> u8 {
    let v = i32::from(c)
        .wrapping_mul(10)
        .wrapping_sub(i32::from(before))
        .wrapping_sub(i32::from(after))
        .wrapping_add(4)
        >> 3;
    v.clamp(16, 240) as u8
}

/// Undoes most of the blur that the chroma round trip leaves along a subsampled axis: zune-jpeg
/// upsamples with the triangle filter (3/4 of the nearest sample, 1/4 of the next), and
/// averaging each pair back gives `[1/8, 3/4, 1/8]` of the coded samples; `unblur` is that
/// kernel's first-order inverse (the edges repeat their sample). Along rows of `width`.
fn unblur_rows(plane: &mut [u8], width: usize) {
    for row in plane.chunks_exact_mut(width.max(1)) {
        let Some(&first) = row.first() else { continue };
        let mut before = first;
        let mut samples = row.iter_mut().peekable();
        while let Some(sample) = samples.next() {
            let c = *sample;
            let after = samples.peek().map_or(c, |next| **next);
            *sample = unblur(before, c, after);
            before = c;
        }
    }
}

/// [`unblur_rows`] down the columns; `scratch` holds two rows (`2 * width` bytes).
fn unblur_columns(plane: &mut [u8], width: usize, scratch: &mut [u8]) {
    let width = width.max(1);
    let Some((before, current)) = scratch
        .get_mut(..width.saturating_mul(2))
        .map(|s| s.split_at_mut(width))
    else {
        return;
    };
    let mut rows = plane.chunks_exact_mut(width).peekable();
    let Some(first) = rows.peek() else { return };
    before.copy_from_slice(first);
    while let Some(row) = rows.next() {
        current.copy_from_slice(row);
        let after: &[u8] = rows.peek().map_or(&*current, |next| &**next);
        for (dst, ((&b, &c), &a)) in row
            .iter_mut()
            .zip(before.iter().zip(current.iter()).zip(after))
        {
            *dst = unblur(b, c, a);
        }
        before.copy_from_slice(current);
    }
}

/// Greyscale (full range) to I420 (video range) with neutral chroma.
fn grey_to_i420(luma: &[u8], frame: &mut I420Frame) {
    let (y_plane, u_plane, v_plane) = frame.planes_mut();
    for (d, &s) in y_plane.iter_mut().zip(luma) {
        *d = map(&LUMA, s);
    }
    u_plane.fill(128);
    v_plane.fill(128);
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/mjpeg/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// PSNR of `a` against `b` in dB (infinite when equal), and the largest difference.
    fn compare(a: &[u8], b: &[u8]) -> (f64, u8) {
        assert_eq!(a.len(), b.len());
        let mut sq = 0u64;
        let mut max = 0u8;
        for (&x, &y) in a.iter().zip(b) {
            let d = x.abs_diff(y);
            max = max.max(d);
            sq += u64::from(d) * u64::from(d);
        }
        if sq == 0 {
            return (f64::INFINITY, 0);
        }
        let mse = sq as f64 / a.len() as f64;
        (10.0 * (255.0 * 255.0 / mse).log10(), max)
    }

    /// Decodes fixture `name` (`w` x `h`) and compares it with ffmpeg's decode of the same file
    /// (`name.yuv`, `-pix_fmt yuv420p`): the whole picture over 40 dB, luma within 1 (rounding).
    /// Chroma is held to 34 dB a plane: on `testsrc2`'s sharp colour edges what is left is the
    /// resampling filter, not the decoding (ffmpeg brings 4:4:4 and 4:2:2 chroma to 4:2:0 with
    /// its bicubic filter, we average; and we undo zune-jpeg's chroma upsampling to first order).
    fn check_against_ffmpeg(name: &str, w: u32, h: u32) -> I420Frame {
        let jpeg = fixture(&format!("{name}.jpg"));
        let reference = fixture(&format!("{name}.yuv"));
        let mut decoder = MjpegDecoder::new(w, h).expect("decoder");
        let mut frame = I420Frame::new(w, h);
        decoder.decode(&jpeg, &mut frame).expect(name);
        let (all_db, _) = compare(frame.data(), &reference);
        let (y, u, v) = frame.planes();
        let (ry, rest) = reference.split_at(y.len());
        let (ru, rv) = rest.split_at(u.len());
        let (y_db, y_max) = compare(y, ry);
        let (u_db, _) = compare(u, ru);
        let (v_db, _) = compare(v, rv);
        eprintln!(
            "{name}: {all_db:.1} dB; Y {y_db:.1} dB (max {y_max}), U {u_db:.1} dB, V {v_db:.1} dB"
        );
        assert!(all_db > 40.0, "{name}: {all_db:.1} dB");
        assert!(y_max <= 1, "{name}: luma off by {y_max}");
        assert!(
            u_db > 34.0 && v_db > 34.0,
            "{name}: chroma {u_db:.1} / {v_db:.1} dB"
        );
        frame
    }

    #[test]
    fn decodes_420_and_422_like_ffmpeg() {
        check_against_ffmpeg("420_160x120", 160, 120);
        check_against_ffmpeg("422_160x120", 160, 120);
    }

    #[test]
    fn decodes_odd_sizes_like_ffmpeg() {
        check_against_ffmpeg("420_321x241", 321, 241);
        check_against_ffmpeg("422_321x241", 321, 241);
    }

    #[test]
    fn decodes_444_and_greyscale_like_ffmpeg() {
        check_against_ffmpeg("444_64x48", 64, 48);
        let grey = check_against_ffmpeg("grey_64x48", 64, 48);
        assert!(grey.planes().1.iter().all(|&c| c == 128));
    }

    /// A frame without a DHT segment (as most webcams send them) decodes with the inserted
    /// standard tables to exactly what the original with its tables gives: this checks
    /// [`STANDARD_DHT`] byte for byte against ffmpeg's `-huffman default` tables.
    #[test]
    fn inserted_tables_decode_like_the_original() {
        let with = fixture("422_160x120.jpg");
        let without = fixture("nodht_422_160x120.jpg");
        assert!(with.windows(STANDARD_DHT.len()).any(|w| w == STANDARD_DHT));
        let walk = |jpeg: &[u8]| scan_headers(jpeg).expect("walk");
        assert_eq!(walk(&with).tables_missing_at, None);
        assert!(walk(&without).tables_missing_at.is_some());
        assert_eq!(walk(&with).subsampled, (true, false));
        assert_eq!(walk(&fixture("420_160x120.jpg")).subsampled, (true, true));
        assert_eq!(walk(&fixture("444_64x48.jpg")).subsampled, (false, false));
        let mut decoder = MjpegDecoder::new(160, 120).expect("decoder");
        let mut a = I420Frame::new(160, 120);
        let mut b = I420Frame::new(160, 120);
        decoder.decode(&with, &mut a).expect("with tables");
        decoder.decode(&without, &mut b).expect("without tables");
        assert!(a.data() == b.data());
        // The scratch buffer is reused: a second frame does not grow it.
        let capacity = decoder.patched.capacity();
        decoder.decode(&without, &mut b).expect("again");
        assert_eq!(decoder.patched.capacity(), capacity);
    }

    /// Truncated, corrupt (entropy-coded bytes flipped), empty, not-JPEG and wrong-size frames
    /// are `CorruptFrame` errors, not panics; the decoder goes on decoding good frames after.
    #[test]
    fn damaged_frames_are_corrupt_frame_errors() {
        let good = fixture("422_160x120.jpg");
        let mut cut_headers = good.clone();
        cut_headers.truncate(300);
        let mut cases = vec![
            ("truncated", fixture("truncated_422_160x120.jpg")),
            ("corrupt", fixture("corrupt_422_160x120.jpg")),
            ("empty", Vec::new()),
            ("not a JPEG", b"YUYV".repeat(100)),
            ("cut in the headers", cut_headers),
            ("another size", fixture("420_321x241.jpg")),
        ];
        for cut in [1, 2, 3, 5, 20, 107, 108, 547, 600] {
            cases.push(("cut", good[..cut].to_vec()));
        }
        let mut decoder = MjpegDecoder::new(160, 120).expect("decoder");
        let mut frame = I420Frame::new(160, 120);
        for (what, data) in cases {
            let err = decoder.decode(&data, &mut frame).expect_err(what);
            assert_eq!(err.kind(), ErrorKind::CorruptFrame, "{what}: {err}");
            assert!(err.to_string().contains("dropped"), "{err}");
            decoder.decode(&good, &mut frame).expect("good after bad");
        }
    }

    #[test]
    fn a_frame_of_the_wrong_size_is_a_caller_error() {
        let mut decoder = MjpegDecoder::new(160, 120).expect("decoder");
        let mut frame = I420Frame::new(64, 48);
        let err = decoder
            .decode(&fixture("422_160x120.jpg"), &mut frame)
            .expect_err("size");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            MjpegDecoder::new(0, 10).expect_err("empty").kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn range_tables_match_the_video_range() {
        assert_eq!((LUMA[0], LUMA[255]), (16, 235));
        assert_eq!((CHROMA[0], CHROMA[128], CHROMA[255]), (16, 128, 240));
    }
}
