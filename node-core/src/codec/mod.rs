//! Video codecs: VP8 on libvpx (a realtime encoder for the stream, a decoder for checks).
//!
//! This module owns the boundary to libvpx: every `unsafe` call into the C library lives under
//! `codec/`, behind safe types that never panic and never hand out a pointer that can outlive the
//! libvpx context it came from. It also owns [`CodecError`], whose messages say what the caller
//! should do, and [`libvpx_version`] for the startup log.
//!
//! - [`vp8`]: [`Vp8Config`], [`Vp8Encoder`] (one encoded frame per captured frame, never
//!   dropping, single token partition for the RFC 7741 payloader) and [`EncodedFrame`];
//! - [`vp8::decoder`]: [`Vp8Decoder`], used by tests and benchmarks to check what was encoded.

pub mod vp8;

pub use vp8::decoder::{DecodedPicture, Vp8Decoder};
pub use vp8::{EncodedFrame, Vp8Config, Vp8Encoder};

use std::ffi::{CStr, c_char};

use vpx_sys::{vpx_codec_ctx_t, vpx_codec_err_t};

/// Everything that can go wrong in the codec layer. Each message ends with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A [`Vp8Config`] field is out of range; nothing was handed to libvpx.
    #[error("invalid VP8 encoder configuration: {field} {problem}; fix the configuration")]
    InvalidConfig {
        /// The offending field of [`Vp8Config`] (or the method argument).
        field: &'static str,
        /// What is wrong with it, including the accepted range.
        problem: String,
    },
    /// libvpx refused to create the encoder.
    #[error(
        "libvpx refused the encoder configuration: {detail}; check width/height/bitrate/threads \
         and that the installed libvpx has VP8 encoding"
    )]
    EncoderInit {
        /// libvpx's error text.
        detail: String,
    },
    /// libvpx rejected an encoder control (speed, partitions, ...).
    #[error(
        "libvpx rejected encoder control {control} = {value}: {detail}; check the value against \
         the libvpx version in use ({version})",
        version = libvpx_version()
    )]
    Control {
        /// The control's libvpx name, e.g. `VP8E_SET_CPUUSED`.
        control: &'static str,
        /// The value that was passed.
        value: i32,
        /// libvpx's error text.
        detail: String,
    },
    /// The frame handed to the encoder does not have the configured size.
    #[error(
        "frame is {got_width}x{got_height} but the encoder was configured for \
         {expected_width}x{expected_height}; scale the frame or create an encoder for that size"
    )]
    FrameSize {
        /// Configured width.
        expected_width: u32,
        /// Configured height.
        expected_height: u32,
        /// Width of the frame that was passed.
        got_width: u32,
        /// Height of the frame that was passed.
        got_height: u32,
    },
    /// libvpx failed while encoding a frame.
    #[error(
        "libvpx failed to encode a frame: {detail}; skip this frame and force a keyframe on the \
         next one (recreate the encoder if it keeps failing)"
    )]
    Encode {
        /// libvpx's error text.
        detail: String,
    },
    /// libvpx returned more than one frame packet for one input frame, which the realtime,
    /// lag-free, single-partition configuration never does.
    #[error(
        "libvpx returned {packets} frame packets for one input frame (expected one); discard \
         them and force a keyframe on the next frame"
    )]
    UnexpectedPackets {
        /// How many frame packets were returned.
        packets: usize,
    },
    /// libvpx refused a new rate-control configuration.
    #[error(
        "libvpx refused the new target bitrate of {kbps} kbps: {detail}; keep the previous \
         bitrate"
    )]
    Reconfigure {
        /// The bitrate that was requested.
        kbps: u32,
        /// libvpx's error text.
        detail: String,
    },
    /// libvpx refused to create the decoder.
    #[error(
        "libvpx could not create a VP8 decoder: {detail}; check that the installed libvpx has \
         VP8 decoding"
    )]
    DecoderInit {
        /// libvpx's error text.
        detail: String,
    },
    /// The encoded frame could not be decoded (corrupt, truncated, or not VP8).
    #[error(
        "libvpx could not decode the VP8 frame: {detail}; drop it and wait for (or request) a \
         keyframe"
    )]
    Decode {
        /// libvpx's error text.
        detail: String,
    },
    /// The encoded frame is larger than libvpx can take in one call (4 GiB).
    #[error("encoded frame of {len} bytes is larger than libvpx accepts (4 GiB); drop it")]
    InputTooLarge {
        /// Length of the rejected input.
        len: usize,
    },
    /// The decoder produced a picture in a layout other than 8-bit I420.
    #[error(
        "libvpx decoded a picture in an unsupported layout ({detail}); only 8-bit I420 is handled"
    )]
    UnsupportedPicture {
        /// What was found.
        detail: String,
    },
    /// The decoded picture does not fit the output frame.
    #[error(
        "decoded picture is {width}x{height} but the output frame is {out_width}x{out_height}; \
         allocate an I420Frame of {width}x{height} (or use Vp8Decoder::decode_picture to learn \
         the size before copying)"
    )]
    DecodedSize {
        /// Width of the decoded picture.
        width: u32,
        /// Height of the decoded picture.
        height: u32,
        /// Width of the output frame that was passed.
        out_width: u32,
        /// Height of the output frame that was passed.
        out_height: u32,
    },
}

/// The libvpx version string, e.g. `"v1.12.0"`, for the startup log and bug reports.
pub fn libvpx_version() -> String {
    // SAFETY: `vpx_codec_version_str` has no preconditions and returns a pointer to a static,
    // NUL-terminated string (or, defensively, null, which `c_string` handles).
    let p = unsafe { vpx_sys::vpx_codec_version_str() };
    // SAFETY: `p` is null or a static NUL-terminated string, see above.
    unsafe { c_string(p) }.unwrap_or_else(|| "unknown".to_owned())
}

/// Copies a C string libvpx returned; `None` for null.
///
/// # Safety
/// `p` must be null or point to a NUL-terminated string valid for the duration of the call.
unsafe fn c_string(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per this function's contract.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// libvpx's text for error `code`, without context details.
fn err_code_text(code: vpx_codec_err_t) -> String {
    // SAFETY: `vpx_codec_err_to_string` accepts any code and returns a static string.
    let p = unsafe { vpx_sys::vpx_codec_err_to_string(code) };
    // SAFETY: null or a static NUL-terminated string.
    unsafe { c_string(p) }.unwrap_or_else(|| format!("libvpx error {}", code as u32))
}

/// libvpx's text for error `code` on a live context, with `vpx_codec_error_detail` when the
/// context has one, e.g. `"Invalid parameter (g_w out of range [1..16383])"`.
///
/// Only call this on a context that was initialised successfully and not destroyed: after a
/// failed `*_init_ver` libvpx has already torn the context down and its detail pointer may
/// dangle, so those paths use [`err_code_text`].
fn ctx_err_text(ctx: &mut vpx_codec_ctx_t, code: vpx_codec_err_t) -> String {
    let base = err_code_text(code);
    // SAFETY: `ctx` is a live, initialised context (caller contract above); the detail is null or
    // a string owned by the context, valid until the next call on it, and we copy it right away.
    let detail = unsafe { c_string(vpx_sys::vpx_codec_error_detail(ctx)) };
    match detail {
        Some(d) if !d.is_empty() => format!("{base} ({d})"),
        _ => base,
    }
}
