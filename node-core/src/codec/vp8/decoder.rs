//! The VP8 decoder on libvpx, for tests and benchmarks that check what the encoder produced.
//!
//! This file owns the decoder side of the libvpx boundary: it turns compressed frames into
//! pictures and copies them, row by row (libvpx pads its planes, so its strides are wider than
//! the picture), into the pipeline's [`I420Frame`]. A decoded picture is handed out as a
//! [`DecodedPicture`] that borrows the decoder, so it cannot outlive the libvpx buffer it points
//! into; callers that need the size before allocating use [`Vp8Decoder::decode_picture`].

use std::ffi::{c_int, c_uint};
use std::ptr;

use crate::frame::I420Frame;
use vpx_sys::{vpx_codec_ctx_t, vpx_codec_dec_cfg_t, vpx_codec_err_t, vpx_codec_iter_t};

use crate::codec::{CodecError, ctx_err_text, err_code_text};

/// A VP8 decoder (libvpx, one thread, no post-processing).
pub struct Vp8Decoder {
    /// Boxed so libvpx's context keeps one address for its whole life.
    ctx: Box<vpx_codec_ctx_t>,
}

// SAFETY: the libvpx context has no thread affinity; it only must not be used from two threads
// at once. `Vp8Decoder` owns it exclusively and every call into it takes `&mut self`, so moving
// the decoder to another thread is sound. It is not `Sync`.
unsafe impl Send for Vp8Decoder {}

impl std::fmt::Debug for Vp8Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vp8Decoder").finish_non_exhaustive()
    }
}

impl Vp8Decoder {
    /// Creates a decoder.
    pub fn new() -> Result<Self, CodecError> {
        // SAFETY: no preconditions; returns the static VP8 decoder interface (null only if
        // libvpx was built without it, checked below).
        let iface = unsafe { vpx_sys::vpx_codec_vp8_dx() };
        if iface.is_null() {
            return Err(CodecError::DecoderInit {
                detail: "this libvpx has no VP8 decoder".into(),
            });
        }
        let cfg = vpx_codec_dec_cfg_t {
            threads: 1,
            w: 0,
            h: 0,
        };
        // SAFETY: all-zero bytes are a valid `vpx_codec_ctx_t` (null pointers, `VPX_CODEC_OK`).
        let mut ctx: Box<vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `ctx` is a zeroed context at a stable address, `iface` the VP8 decoder, `cfg`
        // a valid configuration (copied by libvpx), the ABI version the bindings match (1.12).
        let res = unsafe {
            vpx_sys::vpx_codec_dec_init_ver(
                &mut *ctx,
                iface,
                &cfg,
                0,
                vpx_sys::VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        if res != vpx_codec_err_t::VPX_CODEC_OK {
            // libvpx has already destroyed the context; its detail pointer may dangle.
            return Err(CodecError::DecoderInit {
                detail: err_code_text(res),
            });
        }
        Ok(Self { ctx })
    }

    /// Decodes one compressed frame and copies the picture into `out`.
    ///
    /// Returns `Ok(false)` if there is no picture (empty input, or nothing to show).
    /// If the picture's size differs from `out`'s, returns [`CodecError::DecodedSize`] with the
    /// decoded size; that picture is then lost (the decoder state is still advanced), so callers
    /// that may see size changes should use [`Self::decode_picture`].
    pub fn decode(&mut self, data: &[u8], out: &mut I420Frame) -> Result<bool, CodecError> {
        match self.decode_picture(data)? {
            None => Ok(false),
            Some(pic) => {
                pic.copy_to(out)?;
                Ok(true)
            }
        }
    }

    /// Decodes one compressed frame and returns the picture, borrowed from the decoder until
    /// its next call, or `None` if there is none (empty input, or nothing to show).
    pub fn decode_picture(
        &mut self,
        data: &[u8],
    ) -> Result<Option<DecodedPicture<'_>>, CodecError> {
        if data.is_empty() {
            return Ok(None);
        }
        let len = c_uint::try_from(data.len())
            .map_err(|_| CodecError::InputTooLarge { len: data.len() })?;
        // SAFETY: the context is initialised; `data` is valid for `len` bytes for the whole
        // call and libvpx does not keep the pointer (no frame-input fragments mode).
        let res = unsafe {
            vpx_sys::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0)
        };
        if res != vpx_codec_err_t::VPX_CODEC_OK {
            return Err(CodecError::Decode {
                detail: ctx_err_text(&mut self.ctx, res),
            });
        }
        let mut iter: vpx_codec_iter_t = ptr::null();
        let mut img: *const vpx_sys::vpx_image_t = ptr::null();
        loop {
            // SAFETY: the context is initialised and `iter` is the iterator libvpx started.
            let next = unsafe { vpx_sys::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
            if next.is_null() {
                break;
            }
            img = next; // VP8 yields at most one; keep the last.
        }
        if img.is_null() {
            return Ok(None);
        }
        // SAFETY: `img` is a picture owned by the context, valid until the next decode or the
        // decoder's destruction; the returned value borrows `self` mutably, which rules out both.
        unsafe { DecodedPicture::from_vpx(img) }.map(Some)
    }
}

impl Drop for Vp8Decoder {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `new` and is destroyed exactly once, here.
        unsafe {
            vpx_sys::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// One plane of a decoded picture: `rows` rows of `width` bytes, `stride` bytes apart.
#[derive(Clone, Copy)]
struct Plane<'a> {
    data: &'a [u8],
    stride: usize,
    width: usize,
    rows: usize,
}

impl<'a> Plane<'a> {
    fn row(&self, r: usize) -> &'a [u8] {
        let start = r.saturating_mul(self.stride);
        self.data
            .get(start..start.saturating_add(self.width))
            .unwrap_or(&[])
    }
}

/// A decoded I420 picture, borrowed from the [`Vp8Decoder`] that produced it.
pub struct DecodedPicture<'a> {
    width: u32,
    height: u32,
    planes: [Plane<'a>; 3],
}

impl std::fmt::Debug for DecodedPicture<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedPicture")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl<'a> DecodedPicture<'a> {
    /// Checks libvpx's picture and turns its planes into bounded slices.
    ///
    /// # Safety
    /// `img` must point to a picture libvpx returned, valid (with its plane buffers) for `'a`.
    unsafe fn from_vpx(img: *const vpx_sys::vpx_image_t) -> Result<Self, CodecError> {
        // Every field is read on its own, through raw pointers, and `fmt` as a plain integer, so
        // an unexpected value is reported instead of being materialised as a Rust enum.
        // SAFETY: `img` is valid per the contract; all these fields are plain integers/pointers.
        let (fmt, w, h, xs, ys, planes, strides) = unsafe {
            (
                ptr::addr_of!((*img).fmt).cast::<u32>().read(),
                ptr::addr_of!((*img).d_w).read(),
                ptr::addr_of!((*img).d_h).read(),
                ptr::addr_of!((*img).x_chroma_shift).read(),
                ptr::addr_of!((*img).y_chroma_shift).read(),
                ptr::addr_of!((*img).planes).read(),
                ptr::addr_of!((*img).stride).read(),
            )
        };
        if fmt != vpx_sys::vpx_img_fmt::VPX_IMG_FMT_I420 as u32 || xs != 1 || ys != 1 {
            return Err(CodecError::UnsupportedPicture {
                detail: format!("format {fmt:#x}, chroma shift {xs}x{ys}"),
            });
        }
        if w == 0 || h == 0 {
            return Err(CodecError::UnsupportedPicture {
                detail: format!("empty picture {w}x{h}"),
            });
        }
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let dims = [(w, h), (cw, ch), (cw, ch)];
        let mut out = [Plane {
            data: &[],
            stride: 0,
            width: 0,
            rows: 0,
        }; 3];
        for (i, (slot, &(pw, ph))) in out.iter_mut().zip(dims.iter()).enumerate() {
            let (pw, ph) = (pw as usize, ph as usize);
            let (p, stride) = (planes[i], strides[i]);
            let stride = usize::try_from(stride).unwrap_or(0);
            if p.is_null() || stride < pw {
                return Err(CodecError::UnsupportedPicture {
                    detail: format!("plane {i}: stride {} for width {pw}", strides[i]),
                });
            }
            // The last row needs only `pw` bytes, not a whole stride.
            let len = stride
                .checked_mul(ph - 1)
                .and_then(|n| n.checked_add(pw))
                .ok_or_else(|| CodecError::UnsupportedPicture {
                    detail: format!("plane {i} too large"),
                })?;
            // SAFETY: libvpx's plane `i` holds `ph` rows of at least `pw` bytes, `stride` bytes
            // apart, valid for `'a` per the contract; `len` covers exactly that.
            let data = unsafe { std::slice::from_raw_parts(p.cast_const(), len) };
            *slot = Plane {
                data,
                stride,
                width: pw,
                rows: ph,
            };
        }
        Ok(Self {
            width: w,
            height: h,
            planes: out,
        })
    }

    /// Picture width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Picture height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Copies the picture into `out`, which must have the same size
    /// (else [`CodecError::DecodedSize`], carrying the decoded size).
    pub fn copy_to(&self, out: &mut I420Frame) -> Result<(), CodecError> {
        if out.width() != self.width || out.height() != self.height {
            return Err(CodecError::DecodedSize {
                width: self.width,
                height: self.height,
                out_width: out.width(),
                out_height: out.height(),
            });
        }
        let (y, u, v) = out.planes_mut();
        for (plane, dst) in self.planes.iter().zip([y, u, v]) {
            if plane.width == 0 {
                continue;
            }
            for (r, dst_row) in dst
                .chunks_exact_mut(plane.width)
                .take(plane.rows)
                .enumerate()
            {
                let src = plane.row(r);
                if src.len() == dst_row.len() {
                    dst_row.copy_from_slice(src);
                }
            }
        }
        Ok(())
    }

    /// Copies the picture into a newly allocated frame of its size.
    pub fn to_frame(&self) -> I420Frame {
        let mut f = I420Frame::new(self.width, self.height);
        // Cannot fail: the frame has the picture's size.
        let _ = self.copy_to(&mut f);
        f
    }
}
