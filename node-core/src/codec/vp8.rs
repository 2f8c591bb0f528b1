//! The realtime VP8 encoder on libvpx: configuration, the safe wrapper, its output type.
//!
//! This file owns the encoder side of the libvpx boundary. It configures libvpx the way WebRTC
//! does for live VP8 (one pass, CBR, no lag, no frame dropping, error-resilient, a single token
//! partition so the RFC 7741 payloader can mark everything as partition 0), except for a static
//! threshold that lets still areas skip ([`Vp8Tuning`]; WebRTC's camera value of 1 is practically
//! off, and a still scene then costs 0.6-1x the CPU of a moving one). It feeds libvpx the
//! pipeline's pooled [`I420Frame`]s without copying them: each frame's contiguous Y, U, V buffer is
//! wrapped in a `vpx_image_t` on the stack. The encoded bytes are copied once, into a buffer the
//! encoder owns and reuses, so the steady state allocates nothing per frame.
//!
//! Timing: the encoder's timebase is one frame (`fps_den / fps_num` seconds) and its pts is a
//! private counter that advances by one per [`Vp8Encoder::encode`] call. The RTP timestamp is
//! derived from the capture time elsewhere (`rtp`), never from this pts.
//!
//! The decoder used to check the output lives in [`decoder`].

pub mod decoder;

pub use decoder::{DecodedPicture, Vp8Decoder};

use std::ffi::{c_int, c_long, c_uint, c_ulong};
use std::ptr;

use crate::frame::I420Frame;
use vpx_sys::{
    vp8e_enc_control_id, vpx_codec_ctx_t, vpx_codec_cx_pkt_kind, vpx_codec_enc_cfg_t,
    vpx_codec_err_t, vpx_codec_iter_t, vpx_enc_frame_flags_t, vpx_enc_pass, vpx_image_t,
    vpx_img_fmt, vpx_kf_mode, vpx_rational, vpx_rc_mode,
};

use super::{CodecError, ctx_err_text, err_code_text};

/// Largest picture side VP8 can code is 16383; sizes must also be even, so 16382.
const MAX_SIDE: u32 = 16382;
/// Accepted target bitrates, kbit/s.
const BITRATE_RANGE: std::ops::RangeInclusive<u32> = 50..=20_000;
/// Accepted frame rates, frames per second (checked as a fraction).
const MAX_FPS: u64 = 120;
/// libvpx's range for `VP8E_SET_CPUUSED`.
const CPU_USED_RANGE: std::ops::RangeInclusive<i32> = -16..=16;
/// libvpx's limit on `g_threads` for VP8.
const MAX_THREADS: u32 = 64;

/// Rate-control buffer model, milliseconds (WebRTC's values for realtime VP8).
const RC_BUF_MS: c_uint = 1000;
const RC_BUF_INITIAL_MS: c_uint = 500;
const RC_BUF_OPTIMAL_MS: c_uint = 600;
/// Quantizer range (0..63 in libvpx units); 56 keeps the worst case watchable.
const RC_MIN_Q: c_uint = 2;
const RC_MAX_Q: c_uint = 56;
/// Floor for `VP8E_SET_MAX_INTRA_BITRATE_PCT`.
const MIN_INTRA_PCT: u64 = 300;

/// Settings for [`Vp8Encoder`]. Check them with [`Vp8Config::validate`] (the encoder does too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Config {
    /// Picture width in pixels: even, 2..=16382.
    pub width: u32,
    /// Picture height in pixels: even, 2..=16382.
    pub height: u32,
    /// Frame-rate numerator (frames per second = `fps_num / fps_den`, 1..=120).
    pub fps_num: u32,
    /// Frame-rate denominator (non-zero).
    pub fps_den: u32,
    /// Target bitrate in kbit/s, 50..=20000.
    pub bitrate_kbps: u32,
    /// Largest distance between keyframes, in frames (e.g. 300 = 10 s at 30 fps); at least 1.
    pub keyframe_interval: u32,
    /// libvpx speed (`VP8E_SET_CPUUSED`), -16..=16, with libvpx's two meanings in realtime mode
    /// (`vp8_encode_frame` / `vp8_auto_select_speed` in libvpx):
    /// - negative, -16..=-1: a **fixed** speed `|cpu_used|`, higher is faster and blurrier, and
    ///   the CPU per frame is predictable. -6 is what Chrome and aiortc use on desktop CPUs, -12
    ///   what Chrome uses on ARM.
    /// - 0..=16: **adaptive**: libvpx measures its own encode time and moves between speed 4
    ///   and 16 to keep each frame within `(16 - cpu_used) / 16` of the frame interval. It
    ///   spends whatever headroom that leaves on quality: on a fast core `8` settles at speed 4
    ///   (measured here: 1.4-1.7x the CPU of -6 for +0.6 dB PSNR at 1 Mbit/s, BENCHMARKS.md), on a
    ///   slow one it climbs to the fastest speed that fits.
    pub cpu_used: i32,
    /// Encoder threads, 1..=64 (VP8 splits the picture by macroblock rows).
    pub threads: u32,
}

impl Default for Vp8Config {
    /// 640x480 at 30 fps, 1000 kbit/s, a keyframe at least every 300 frames, fixed speed 6
    /// (`cpu_used: -6`), 1 thread.
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps_num: 30,
            fps_den: 1,
            bitrate_kbps: 1000,
            keyframe_interval: 300,
            cpu_used: -6,
            threads: 1,
        }
    }
}

impl Vp8Config {
    /// Checks every field; the error names the first bad field and its accepted range.
    pub fn validate(&self) -> Result<(), CodecError> {
        check_side("width", self.width)?;
        check_side("height", self.height)?;
        if self.fps_num == 0 {
            return Err(invalid(
                "fps_num",
                "is 0; the frame rate must be positive".into(),
            ));
        }
        if self.fps_den == 0 {
            return Err(invalid(
                "fps_den",
                "is 0; use 1 for whole frame rates".into(),
            ));
        }
        // The timebase is handed to libvpx as a C int fraction.
        for (field, v) in [("fps_num", self.fps_num), ("fps_den", self.fps_den)] {
            if c_int::try_from(v).is_err() {
                return Err(invalid(
                    field,
                    format!("is {v}; it must be at most {}", c_int::MAX),
                ));
            }
        }
        let (num, den) = (u64::from(self.fps_num), u64::from(self.fps_den));
        if num < den || num > MAX_FPS * den {
            return Err(invalid(
                "fps_num/fps_den",
                format!(
                    "is {}/{} fps; the frame rate must be between 1 and {MAX_FPS} fps",
                    self.fps_num, self.fps_den
                ),
            ));
        }
        check_bitrate(self.bitrate_kbps)?;
        if self.keyframe_interval == 0 {
            return Err(invalid(
                "keyframe_interval",
                "is 0; it is the largest keyframe distance in frames and must be at least 1".into(),
            ));
        }
        if !CPU_USED_RANGE.contains(&self.cpu_used) {
            return Err(invalid(
                "cpu_used",
                format!(
                    "is {}; libvpx accepts {}..={} (realtime: 4..=16)",
                    self.cpu_used,
                    CPU_USED_RANGE.start(),
                    CPU_USED_RANGE.end()
                ),
            ));
        }
        if self.threads == 0 || self.threads > MAX_THREADS {
            return Err(invalid(
                "threads",
                format!("is {}; it must be 1..={MAX_THREADS}", self.threads),
            ));
        }
        Ok(())
    }

    /// `VP8E_SET_MAX_INTRA_BITRATE_PCT` as WebRTC computes it: half the optimal buffer's worth of
    /// frames (`600 ms * 0.5 * fps / 10`, in percent of a frame's budget), at least 300 %. At
    /// 30 fps that is 900 %: a keyframe may take nine frames' budget, which keeps it sharp
    /// without a burst the pacer cannot absorb.
    fn max_intra_bitrate_pct(&self) -> i32 {
        let (num, den) = (u64::from(self.fps_num), u64::from(self.fps_den).max(1));
        let pct = (u64::from(RC_BUF_OPTIMAL_MS) * num / (20 * den)).max(MIN_INTRA_PCT);
        i32::try_from(pct).unwrap_or(i32::MAX)
    }
}

fn invalid(field: &'static str, problem: String) -> CodecError {
    CodecError::InvalidConfig { field, problem }
}

fn check_side(field: &'static str, v: u32) -> Result<(), CodecError> {
    if v == 0 || !v.is_multiple_of(2) || v > MAX_SIDE {
        return Err(invalid(
            field,
            format!("is {v}; it must be even and 2..={MAX_SIDE} pixels"),
        ));
    }
    Ok(())
}

fn check_bitrate(kbps: u32) -> Result<(), CodecError> {
    if !BITRATE_RANGE.contains(&kbps) {
        return Err(invalid(
            "bitrate_kbps",
            format!(
                "is {kbps}; it must be {}..={} kbit/s",
                BITRATE_RANGE.start(),
                BITRATE_RANGE.end()
            ),
        ));
    }
    Ok(())
}

/// libvpx's range for `VP8E_SET_NOISE_SENSITIVITY` (VP8: 0 off .. 6).
const NOISE_SENSITIVITY_MAX: u32 = 6;
/// libvpx's range for `VP8E_SET_SCREEN_CONTENT_MODE` (0 off, 1 on, 2 on with more aggressive
/// rate control).
const SCREEN_CONTENT_MAX: u32 = 2;

/// The static threshold the node uses ([`Vp8Tuning::default`]); chosen by measurement, see
/// [`Vp8Tuning::static_threshold`].
pub const STATIC_THRESHOLD: u32 = 500;

/// libvpx's realtime tools for static content, set once when the encoder is created.
/// [`Vp8Encoder::new`] uses [`Vp8Tuning::default`]; [`Vp8Encoder::with_tuning`] takes others
/// (the `still` benchmark measures the candidates against each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Tuning {
    /// `VP8E_SET_STATIC_THRESHOLD` (libvpx's `encode_breakout`, `check_for_encode_breakout` in
    /// `vp8/encoder/pickinter.c`): a macroblock whose first good inter prediction (usually
    /// "no motion, last frame") leaves a luma sum of squared errors below
    /// `max(this, dequant^2 / 16)` and a chroma one below half of this is coded as a skip (no
    /// residual) and its mode search stops there. 0 or 1 is practically off (WebRTC's camera
    /// value; the chroma test then needs an exact match).
    ///
    /// The default, [`STATIC_THRESHOLD`] = 500 (a block whose luma error is below a mean
    /// square of ~2 per pixel, 45 dB, stops being refined), is the `still` benchmark's choice
    /// (BENCHMARKS.md, "Still scenes"; 640x480, 1 Mbit/s, speed 6). On a still picture with a
    /// small moving region it cut the CPU per frame to 0.36-0.41x that of the threshold 1
    /// (0.32-0.46x the moving test pattern's) and the bitrate by 28-56 %. On the moving test
    /// pattern and on still pictures with camera noise (sigma 1-2) it changes nothing. The price
    /// is a quality ceiling on still areas: a synthetic textured picture lost 0.33 dB (45.8 ->
    /// 45.5) and the frozen test pattern gained 1.2 dB, but two smooth photographs, which at
    /// 1 Mbit/s creep up to 49-50 dB when every block keeps being re-coded, stop at 47.4-48.0 dB.
    /// Lower values lose less there but save nothing on textured pictures (300: 0.9x the CPU);
    /// higher ones cost more quality everywhere. At quantizer indexes of 70 and up (a hard
    /// picture at a low bitrate) libvpx's own `dequant^2 / 16` is above 500 and this changes
    /// nothing.
    pub static_threshold: u32,
    /// `VP8E_SET_NOISE_SENSITIVITY`, 0..=6: libvpx's temporal denoiser (0 off, 1 luma, 2 luma
    /// and chroma, 3 aggressive, 4 adaptive). Off, as before: measured, 1 and 4 cost 1.1-1.4x
    /// the CPU per frame on every scene, 1.1-1.4 dB on the clean moving pattern and 2.4-3 dB on
    /// clean still pictures; they only pay on a noisy camera (+1.8 dB at sigma 2, +0.3 dB at
    /// sigma 1), for CPU the Pi Zero does not have.
    pub noise_sensitivity: u32,
    /// `VP8E_SET_SCREEN_CONTENT_MODE`, 0..=2 (0 off, 1 screen content, 2 screen content that
    /// drops frames on overshoot: [`Vp8Encoder::encode`] then returns no data). Off: measured,
    /// 1 saves no CPU on camera-like or pattern content and loses 0.1-0.9 dB; 2 with a
    /// threshold of 300 (WebRTC's screen-share pair) saves only what 300 alone saves, loses
    /// more, and dropped a frame of a noisy still scene.
    pub screen_content_mode: u32,
}

impl Default for Vp8Tuning {
    fn default() -> Self {
        Self {
            static_threshold: STATIC_THRESHOLD,
            noise_sensitivity: 0,
            screen_content_mode: 0,
        }
    }
}

impl Vp8Tuning {
    /// Checks every field against libvpx's range; the error names the first bad field.
    pub fn validate(&self) -> Result<(), CodecError> {
        if c_int::try_from(self.static_threshold).is_err() {
            return Err(invalid(
                "static_threshold",
                format!(
                    "is {}; it must be at most {}",
                    self.static_threshold,
                    c_int::MAX
                ),
            ));
        }
        if self.noise_sensitivity > NOISE_SENSITIVITY_MAX {
            return Err(invalid(
                "noise_sensitivity",
                format!(
                    "is {}; libvpx accepts 0..={NOISE_SENSITIVITY_MAX}",
                    self.noise_sensitivity
                ),
            ));
        }
        if self.screen_content_mode > SCREEN_CONTENT_MAX {
            return Err(invalid(
                "screen_content_mode",
                format!(
                    "is {}; libvpx accepts 0..={SCREEN_CONTENT_MAX}",
                    self.screen_content_mode
                ),
            ));
        }
        Ok(())
    }
}

/// One encoded VP8 frame, borrowed from the encoder until its next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedFrame<'a> {
    /// The VP8 frame (one token partition). Empty if libvpx produced nothing for this input;
    /// the caller then skips the frame.
    pub data: &'a [u8],
    /// Whether this is a keyframe (decodable on its own; what a new viewer needs).
    pub keyframe: bool,
    /// The encoder's pts, in frames since the encoder was created (not an RTP timestamp).
    pub pts: i64,
}

/// A realtime VP8 encoder (libvpx). One encoded frame per input frame, never dropping.
pub struct Vp8Encoder {
    /// Boxed so libvpx's context keeps one address for its whole life.
    ctx: Box<vpx_codec_ctx_t>,
    /// The libvpx configuration in force, kept for `vpx_codec_enc_config_set`.
    enc_cfg: vpx_codec_enc_cfg_t,
    cfg: Vp8Config,
    tuning: Vp8Tuning,
    next_pts: i64,
    /// Output buffer, cleared per frame; its capacity is kept.
    out: Vec<u8>,
}

// SAFETY: the libvpx context has no thread affinity; it only must not be used from two threads
// at once. `Vp8Encoder` owns it exclusively (no clones, no shared handles) and every call into it
// takes `&mut self`, so moving the encoder to another thread is sound. It is not `Sync`.
unsafe impl Send for Vp8Encoder {}

impl std::fmt::Debug for Vp8Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Encoder")
            .field("cfg", &self.cfg)
            .field("tuning", &self.tuning)
            .field("next_pts", &self.next_pts)
            .field("out_capacity", &self.out.capacity())
            .finish_non_exhaustive()
    }
}

impl Vp8Encoder {
    /// Creates an encoder for `cfg` (validated first) with WebRTC's realtime settings and the
    /// node's static-content tuning ([`Vp8Tuning::default`]).
    pub fn new(cfg: &Vp8Config) -> Result<Self, CodecError> {
        Self::with_tuning(cfg, &Vp8Tuning::default())
    }

    /// Like [`Self::new`] with other static-content settings (both are validated first).
    pub fn with_tuning(cfg: &Vp8Config, tuning: &Vp8Tuning) -> Result<Self, CodecError> {
        cfg.validate()?;
        tuning.validate()?;

        // SAFETY: `vpx_codec_vp8_cx` has no preconditions; it returns the static VP8 encoder
        // interface (null only if libvpx was built without VP8 encoding, checked below).
        let iface = unsafe { vpx_sys::vpx_codec_vp8_cx() };
        if iface.is_null() {
            return Err(CodecError::EncoderInit {
                detail: "this libvpx has no VP8 encoder".into(),
            });
        }

        let mut enc_cfg = std::mem::MaybeUninit::<vpx_codec_enc_cfg_t>::zeroed();
        // SAFETY: `iface` is a valid interface and `enc_cfg` points to writable memory of the
        // right type; usage 0 is the only usage VP8 defines (VP8 selects realtime per frame,
        // through the deadline).
        let res = unsafe { vpx_sys::vpx_codec_enc_config_default(iface, enc_cfg.as_mut_ptr(), 0) };
        if res != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(CodecError::EncoderInit {
                detail: format!("no default configuration: {}", err_code_text(res)),
            });
        }
        // SAFETY: on success `vpx_codec_enc_config_default` copied a complete default
        // configuration (valid values for every field, enums included) into `enc_cfg`.
        let mut enc_cfg = unsafe { enc_cfg.assume_init() };

        // `validate` bounded every value below to its C type's range.
        enc_cfg.g_usage = 0;
        enc_cfg.g_w = cfg.width;
        enc_cfg.g_h = cfg.height;
        enc_cfg.g_threads = cfg.threads;
        enc_cfg.g_timebase = vpx_rational {
            num: c_int::try_from(cfg.fps_den).unwrap_or(1),
            den: c_int::try_from(cfg.fps_num).unwrap_or(30),
        };
        enc_cfg.g_pass = vpx_enc_pass::VPX_RC_ONE_PASS;
        enc_cfg.g_lag_in_frames = 0;
        enc_cfg.g_error_resilient = vpx_sys::VPX_ERROR_RESILIENT_DEFAULT;
        enc_cfg.rc_end_usage = vpx_rc_mode::VPX_CBR;
        enc_cfg.rc_target_bitrate = cfg.bitrate_kbps;
        enc_cfg.rc_dropframe_thresh = 0;
        enc_cfg.rc_resize_allowed = 0;
        enc_cfg.rc_min_quantizer = RC_MIN_Q;
        enc_cfg.rc_max_quantizer = RC_MAX_Q;
        enc_cfg.rc_undershoot_pct = 100;
        enc_cfg.rc_overshoot_pct = 15;
        enc_cfg.rc_buf_sz = RC_BUF_MS;
        enc_cfg.rc_buf_initial_sz = RC_BUF_INITIAL_MS;
        enc_cfg.rc_buf_optimal_sz = RC_BUF_OPTIMAL_MS;
        enc_cfg.kf_mode = vpx_kf_mode::VPX_KF_AUTO;
        enc_cfg.kf_min_dist = 0;
        enc_cfg.kf_max_dist = cfg.keyframe_interval;

        // SAFETY: all-zero bytes are a valid `vpx_codec_ctx_t` (null pointers, `VPX_CODEC_OK`);
        // libvpx expects a zeroed context before init.
        let mut ctx: Box<vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `ctx` is a zeroed context at a stable address, `iface` is the VP8 encoder and
        // `enc_cfg` a complete configuration (libvpx copies it). The ABI version is the one the
        // bindings were generated for (1.12).
        let res = unsafe {
            vpx_sys::vpx_codec_enc_init_ver(
                &mut *ctx,
                iface,
                &enc_cfg,
                0,
                vpx_sys::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if res != vpx_codec_err_t::VPX_CODEC_OK {
            // libvpx has already destroyed the context; its detail pointer may dangle.
            return Err(CodecError::EncoderInit {
                detail: format!(
                    "{} for {}x{} at {}/{} fps, {} kbit/s, {} thread(s)",
                    err_code_text(res),
                    cfg.width,
                    cfg.height,
                    cfg.fps_num,
                    cfg.fps_den,
                    cfg.bitrate_kbps,
                    cfg.threads
                ),
            });
        }

        let mut enc = Self {
            ctx,
            enc_cfg,
            cfg: *cfg,
            tuning: *tuning,
            next_pts: 0,
            // Room for a generous keyframe; it grows (once) if a bigger one ever comes.
            out: Vec::with_capacity(I420Frame::buffer_len(cfg.width, cfg.height) / 4),
        };
        // From here on an early return drops `enc`, which destroys the context.
        use vp8e_enc_control_id as C;
        enc.control(C::VP8E_SET_CPUUSED, "VP8E_SET_CPUUSED", cfg.cpu_used)?;
        // `validate` bounded the tuning values to `c_int`.
        let to_int = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
        enc.control(
            C::VP8E_SET_STATIC_THRESHOLD,
            "VP8E_SET_STATIC_THRESHOLD",
            to_int(tuning.static_threshold),
        )?;
        enc.control(
            C::VP8E_SET_NOISE_SENSITIVITY,
            "VP8E_SET_NOISE_SENSITIVITY",
            to_int(tuning.noise_sensitivity),
        )?;
        if tuning.screen_content_mode != 0 {
            enc.control(
                C::VP8E_SET_SCREEN_CONTENT_MODE,
                "VP8E_SET_SCREEN_CONTENT_MODE",
                to_int(tuning.screen_content_mode),
            )?;
        }
        // One token partition (VP8_ONE_TOKENPARTITION): the payloader sends partition index 0.
        enc.control(C::VP8E_SET_TOKEN_PARTITIONS, "VP8E_SET_TOKEN_PARTITIONS", 0)?;
        let intra = cfg.max_intra_bitrate_pct();
        enc.control(
            C::VP8E_SET_MAX_INTRA_BITRATE_PCT,
            "VP8E_SET_MAX_INTRA_BITRATE_PCT",
            intra,
        )?;
        Ok(enc)
    }

    fn control(
        &mut self,
        id: vp8e_enc_control_id,
        name: &'static str,
        value: i32,
    ) -> Result<(), CodecError> {
        // SAFETY: the context is initialised; each control used here takes one `int` or
        // `unsigned int`, which is what the variadic argument carries (same size and passing
        // convention, and `value` is non-negative for the unsigned ones).
        let res =
            unsafe { vpx_sys::vpx_codec_control_(&mut *self.ctx, id as c_int, value as c_int) };
        if res != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(CodecError::Control {
                control: name,
                value,
                detail: ctx_err_text(&mut self.ctx, res),
            });
        }
        Ok(())
    }

    /// The configuration in force (including the bitrate last set by [`Self::set_bitrate`]).
    pub fn config(&self) -> &Vp8Config {
        &self.cfg
    }

    /// The static-content settings handed to libvpx when the encoder was created.
    pub fn tuning(&self) -> &Vp8Tuning {
        &self.tuning
    }

    /// Encodes `frame` with the realtime deadline, as a keyframe if `force_keyframe` (or if
    /// libvpx decides to). The frame must have the configured size.
    ///
    /// The frame is read in place (no copy). The returned bytes live in the encoder and are
    /// valid until the next call; `data` is empty if libvpx produced no frame. The pts advances
    /// by one per call, whether or not the call succeeds.
    pub fn encode(
        &mut self,
        frame: &I420Frame,
        force_keyframe: bool,
    ) -> Result<EncodedFrame<'_>, CodecError> {
        let (w, h) = (self.cfg.width, self.cfg.height);
        if frame.width() != w || frame.height() != h {
            return Err(CodecError::FrameSize {
                expected_width: w,
                expected_height: h,
                got_width: frame.width(),
                got_height: frame.height(),
            });
        }
        let data = frame.data();
        if data.len() != I420Frame::buffer_len(w, h) {
            return Err(CodecError::Encode {
                detail: format!(
                    "the frame buffer holds {} bytes, a {w}x{h} I420 picture needs {}",
                    data.len(),
                    I420Frame::buffer_len(w, h)
                ),
            });
        }
        let (y, u, v) = frame.planes();

        // SAFETY: all-zero bytes are a valid `vpx_image_t` (null pointers, `VPX_IMG_FMT_NONE`).
        let mut img: vpx_image_t = unsafe { std::mem::zeroed() };
        // SAFETY: `img` is writable; `data` holds a whole `w`x`h` I420 picture (checked above)
        // and outlives every use of `img` in this function. libvpx only reads the input picture,
        // so casting away `const` is sound. `vpx_img_wrap` only fills in `img`'s fields.
        let wrapped = unsafe {
            vpx_sys::vpx_img_wrap(
                &mut img,
                vpx_img_fmt::VPX_IMG_FMT_I420,
                w,
                h,
                1,
                data.as_ptr().cast_mut(),
            )
        };
        if wrapped.is_null() {
            return Err(CodecError::Encode {
                detail: "vpx_img_wrap refused the frame".into(),
            });
        }
        // Point the planes at exactly the layout `I420Frame` defines (for even sizes this is
        // what `vpx_img_wrap` computed anyway).
        let cw = c_int::try_from(frame.chroma_width()).unwrap_or(c_int::MAX);
        img.planes = [
            y.as_ptr().cast_mut(),
            u.as_ptr().cast_mut(),
            v.as_ptr().cast_mut(),
            ptr::null_mut(),
        ];
        img.stride = [c_int::try_from(w).unwrap_or(c_int::MAX), cw, cw, 0];

        let pts = self.next_pts;
        self.next_pts = self.next_pts.wrapping_add(1);
        let flags: vpx_enc_frame_flags_t = if force_keyframe {
            vpx_sys::VPX_EFLAG_FORCE_KF as c_long
        } else {
            0
        };
        // SAFETY: the context is initialised; `img` describes a valid picture of the configured
        // size whose memory (`frame`) is borrowed for the whole call. With no lag, VP8 copies
        // the picture before returning, so nothing keeps pointing into `frame` afterwards.
        let res = unsafe {
            vpx_sys::vpx_codec_encode(
                &mut *self.ctx,
                &img,
                pts,
                1,
                flags,
                vpx_sys::VPX_DL_REALTIME as c_ulong,
            )
        };
        if res != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(CodecError::Encode {
                detail: ctx_err_text(&mut self.ctx, res),
            });
        }

        self.out.clear();
        let mut keyframe = false;
        let mut out_pts = pts;
        let mut packets = 0usize;
        let mut iter: vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: the context is initialised and `iter` is the iterator libvpx started.
            let pkt = unsafe { vpx_sys::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if pkt.is_null() {
                break;
            }
            // Read `kind` as a plain integer: a value the Rust enum does not list must not be
            // materialised as that enum. `kind` is the first field of the `repr(C)` packet.
            // SAFETY: `pkt` points to a packet owned by the context, valid until the next call.
            let kind = unsafe { ptr::addr_of!((*pkt).kind).cast::<u32>().read() };
            if kind != vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT as u32 {
                continue;
            }
            packets += 1;
            if packets > 1 {
                continue; // drain, then report
            }
            // SAFETY: for a frame packet the `frame` member of the union is the active one; it
            // is plain data (pointer, sizes, flags).
            let f = unsafe { ptr::addr_of!((*pkt).data.frame).read() };
            let len = usize::try_from(f.sz).unwrap_or(0);
            if !f.buf.is_null() && len > 0 {
                // SAFETY: libvpx guarantees `buf` holds `sz` bytes until the next call on the
                // context; they are copied out right away.
                let bytes = unsafe { std::slice::from_raw_parts(f.buf.cast::<u8>(), len) };
                self.out.extend_from_slice(bytes);
            }
            keyframe = f.flags & vpx_sys::VPX_FRAME_IS_KEY != 0;
            out_pts = f.pts;
        }
        if packets > 1 {
            self.out.clear();
            return Err(CodecError::UnexpectedPackets { packets });
        }
        Ok(EncodedFrame {
            data: &self.out,
            keyframe: keyframe && !self.out.is_empty(),
            pts: out_pts,
        })
    }

    /// Changes the target bitrate (50..=20000 kbit/s) from the next frame on, for congestion
    /// control. On error the previous bitrate stays in force.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        check_bitrate(kbps)?;
        let mut new_cfg = self.enc_cfg;
        new_cfg.rc_target_bitrate = kbps;
        // SAFETY: the context is initialised and `new_cfg` is a complete configuration derived
        // from the one in force; libvpx copies it.
        let res = unsafe { vpx_sys::vpx_codec_enc_config_set(&mut *self.ctx, &new_cfg) };
        if res != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(CodecError::Reconfigure {
                kbps,
                detail: ctx_err_text(&mut self.ctx, res),
            });
        }
        self.enc_cfg = new_cfg;
        self.cfg.bitrate_kbps = kbps;
        Ok(())
    }
}

impl Drop for Vp8Encoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` (a `Vp8Encoder` only exists after a
        // successful init) and is destroyed exactly once, here. The result is ignored: there is
        // nothing to do about a failed teardown.
        unsafe {
            vpx_sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

#[cfg(test)]
mod tests;
