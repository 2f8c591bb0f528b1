//! `V4l2Source`: capture from a Video4Linux2 device (`--source v4l2:/dev/videoN`).
//!
//! This module owns talking to real cameras: checking the node is a streaming capture device,
//! negotiating a format, size and frame interval (the driver may adjust them; what it reports
//! is what [`FrameSource::info`] says), streaming through a fixed set of mmap buffers allocated
//! once, and turning each dequeued buffer into the caller's [`I420Frame`]: raw YUV with
//! [`super::convert`], MJPEG with [`super::mjpeg`]. Every failure an operator can meet (no
//! device, busy, no permission, no usable format, unplugged, an I/O error or a timeout
//! mid-stream) maps to an [`ErrorKind`] with a message that says what to do.
//!
//! The format: the raw formats the node converts are preferred, in the order of
//! [`PixelFormat::PREFERENCE`] (YU12, YV12, NV12, NV21, YUYV, UYVY, YVYU), when the device
//! lists the requested size and a frame interval at least as fast as the requested rate for
//! them (`VIDIOC_ENUM_FRAMESIZES`, `VIDIOC_ENUM_FRAMEINTERVALS`; a driver that does not
//! enumerate is taken at its word). Otherwise MJPEG, if offered and it gives them: many USB
//! webcams deliver 640x480 and above at 30 fps only as MJPEG, since raw YUYV at that size and
//! rate does not fit USB 2.0. Failing both, the first raw format offered, else MJPEG, and the
//! driver adjusts size and rate. An MJPEG frame that does not decode (corrupt or truncated on
//! the bus) is an [`ErrorKind::CorruptFrame`] error for that frame only: the stream goes on and
//! the capture loop counts it. The QEMU board tests cannot cover MJPEG through a kernel driver:
//! their camera is Linux `vivid`, whose capture formats are all uncompressed (its format table,
//! `drivers/media/test-drivers/vivid/vivid-vid-common.c`, lists YUV, RGB, Bayer and HSV formats
//! and no MJPEG or JPEG), so the fake camera (`fake`) offers MJPEG in the tests here.
//!
//! The source keeps the buffer bookkeeping itself (which buffers the driver holds, which one
//! the caller has) and tears the stream down itself: stream off, unmap, free the driver's
//! buffers, close the file. Each step's failure is logged and returned from
//! [`V4l2Source::close`] (or logged when the source is dropped), never a panic, and the file
//! is closed whatever failed, so an unplugged camera's device number is freed. The system calls
//! sit behind the [`V4l2Device`] trait ([`device`]): [`SysDevice`] for real devices, and in
//! tests (feature `fake`) a fake camera and a fault injector (`fake`).
//!
//! The device is paced by the camera ([`Pacing::Device`]): `capture` blocks until the driver
//! hands over the next buffer, at most [`DEQUEUE_TIMEOUT`].

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::convert::PixelFormat;
use super::mjpeg::{self, MjpegDecoder};
use super::orient::Orientation;
use super::spec::SourceRequest;
use super::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, WallClock};
use crate::frame::I420Frame;

pub mod device;
#[cfg(any(test, feature = "fake"))]
pub mod fake;

pub use device::{
    Caps, Dequeued, FormatDesc, FrameIntervals, FrameSizes, PixFormat, SysDevice, V4l2Device,
};

/// Longest `capture` waits for the device before reporting it as gone.
pub const DEQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most capture buffers a source may ask for.
pub const MAX_BUFFERS: u32 = 32;

// errno values, from the target's C library (they differ between some architectures).
const EPERM: i32 = libc::EPERM;
const ENOENT: i32 = libc::ENOENT;
const EIO: i32 = libc::EIO;
const ENXIO: i32 = libc::ENXIO;
const EACCES: i32 = libc::EACCES;
const EBUSY: i32 = libc::EBUSY;
const ENODEV: i32 = libc::ENODEV;
const EINVAL: i32 = libc::EINVAL;
const ENOTTY: i32 = libc::ENOTTY;
const ETIMEDOUT: i32 = libc::ETIMEDOUT;
/// "Function not implemented": what qemu-user answers for an ioctl it does not emulate (a real
/// kernel says ENOTTY for a file that is not a V4L2 device).
const ENOSYS: i32 = libc::ENOSYS;

/// A V4L2 capture device streaming into mmap buffers.
pub struct V4l2Source {
    /// The open device; `None` once torn down.
    device: Option<Box<dyn V4l2Device>>,
    path: PathBuf,
    card: String,
    driver: String,
    format: CaptureFormat,
    /// The MJPEG decoder (its buffers allocated once), when the stream is MJPEG.
    mjpeg: Option<MjpegDecoder>,
    width: u32,
    height: u32,
    stride: usize,
    fps_num: u32,
    fps_den: u32,
    /// Buffers the driver allocated (and we mapped).
    buffers: u32,
    /// Whether `VIDIOC_STREAMON` succeeded (and no stream-off since).
    streaming: bool,
    /// Per buffer: queued to the driver (it may write into it).
    queued: Vec<bool>,
    /// The buffer dequeued last, read by the caller; queued again on the next `capture`.
    held: Option<u32>,
    /// Driver sequence numbers are 32-bit; this extends them to 64 bits across wraps.
    seq_high: u64,
    last_seq: Option<u32>,
    /// Whether the camera flips the picture itself (its `HFLIP`/`VFLIP` controls).
    flipped: bool,
    /// Set after a failure that leaves the stream unusable; `capture` then reports it again.
    broken: Option<String>,
}

// The capture thread owns the source: it must be `Send` (the device trait requires it).
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<V4l2Source>();
};

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("path", &self.path)
            .field("card", &self.card)
            .field("format", &self.format)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stride", &self.stride)
            .field("fps", &(self.fps_num, self.fps_den))
            .field("buffers", &self.buffers)
            .field("streaming", &self.streaming)
            .field("open", &self.device.is_some())
            .finish_non_exhaustive()
    }
}

/// Maps an I/O error from step `what` on the device at `path` to an operator-facing error.
fn device_error(path: &Path, what: &str, err: &io::Error) -> CameraError {
    let shown = path.display();
    let code = err.raw_os_error();
    let (kind, message) = match code {
        Some(ENOENT) => (
            ErrorKind::NotFound,
            format!("no camera at {shown}: check the cable / `ls /dev/video*`"),
        ),
        Some(EBUSY) => (
            ErrorKind::Busy,
            format!(
                "{shown} is in use by another process ({what} failed: device busy); stop it \
                 (`fuser {shown}` shows which) and try again"
            ),
        ),
        Some(EACCES | EPERM) => (
            ErrorKind::PermissionDenied,
            format!(
                "no permission to use {shown} ({what} failed); add the user to the `video` \
                 group (`sudo usermod -aG video $USER`, then log in again)"
            ),
        ),
        Some(ENODEV | ENXIO) => (
            ErrorKind::Disconnected,
            format!(
                "camera {shown} went away ({what} failed: no such device); check the cable \
                 and reopen the source"
            ),
        ),
        Some(EIO) => (
            ErrorKind::Disconnected,
            format!(
                "camera {shown} failed ({what}: input/output error); check the camera, its \
                 cable and power (`dmesg` tells more), then reopen the source"
            ),
        ),
        Some(ETIMEDOUT) => (
            ErrorKind::Disconnected,
            format!(
                "camera {shown} did not answer in time ({what}: timed out); check the camera \
                 and its cable, then reopen the source"
            ),
        ),
        Some(ENOTTY | ENOSYS) => (
            ErrorKind::InvalidInput,
            format!(
                "{shown} is not a V4L2 video device ({what} failed); give a /dev/videoN capture \
                 node (`v4l2-ctl --list-devices` lists them)"
            ),
        ),
        _ if err.kind() == io::ErrorKind::TimedOut => (
            ErrorKind::Disconnected,
            format!(
                "camera {shown} delivered no picture for {} s; check the camera and its cable, \
                 then reopen the source",
                DEQUEUE_TIMEOUT.as_secs()
            ),
        ),
        _ => (ErrorKind::Other, format!("{what} on {shown} failed: {err}")),
    };
    CameraError::new(kind, message)
}

fn fourcc_text(code: [u8; 4]) -> String {
    code.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

/// Rejects requests no device could satisfy, before anything is opened.
fn check_request(path: &Path, req: &SourceRequest) -> Result<(), CameraError> {
    let shown = path.display();
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(CameraError::new(
            ErrorKind::InvalidInput,
            format!("device path {shown:?} contains a NUL byte; give a /dev/videoN path"),
        ));
    }
    if req.buffers == 0 || req.buffers > MAX_BUFFERS {
        return Err(CameraError::new(
            ErrorKind::InvalidInput,
            format!(
                "{} camera buffers requested for {shown}: use 1 to {MAX_BUFFERS} (4 is the \
                 default)",
                req.buffers
            ),
        ));
    }
    if req.width == 0 || req.height == 0 || req.fps_num == 0 || req.fps_den == 0 {
        return Err(CameraError::new(
            ErrorKind::InvalidInput,
            format!(
                "requested {}x{} at {}/{} fps from {shown}: size and rate must be non-zero",
                req.width, req.height, req.fps_num, req.fps_den
            ),
        ));
    }
    Ok(())
}

/// What a V4L2 stream carries: a raw YUV format converted with [`super::convert`], or MJPEG
/// decoded with [`super::mjpeg`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Raw YUV.
    Raw(PixelFormat),
    /// Motion-JPEG (`MJPG`): one JPEG picture per buffer.
    Mjpeg,
}

impl CaptureFormat {
    /// The V4L2 four-character code.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            CaptureFormat::Raw(raw) => raw.fourcc(),
            CaptureFormat::Mjpeg => mjpeg::FOURCC,
        }
    }

    /// The format with four-character code `code`, if the node handles it.
    pub fn from_fourcc(code: [u8; 4]) -> Option<Self> {
        if code == mjpeg::FOURCC {
            return Some(CaptureFormat::Mjpeg);
        }
        PixelFormat::from_fourcc(code).map(CaptureFormat::Raw)
    }
}

impl std::fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureFormat::Raw(raw) => raw.fmt(f),
            CaptureFormat::Mjpeg => f.write_str("MJPG"),
        }
    }
}

/// Whether `device` says it delivers `fourcc` at the requested size and rate. A driver that
/// does not enumerate sizes or intervals (or fails to) is taken at its word: `VIDIOC_S_FMT` and
/// `VIDIOC_S_PARM` then settle what it delivers, as before sizes were enumerated.
fn offers(device: &mut dyn V4l2Device, fourcc: [u8; 4], req: &SourceRequest) -> bool {
    let format = fourcc_text(fourcc);
    match device.frame_sizes(fourcc) {
        Ok(Some(sizes)) if !sizes.contains(req.width, req.height) => return false,
        Ok(_) => {}
        Err(e) => tracing::debug!(%format, error = %e, "VIDIOC_ENUM_FRAMESIZES failed"),
    }
    match device.frame_intervals(fourcc, req.width, req.height) {
        Ok(Some(intervals)) => intervals.reach(req.fps_num, req.fps_den),
        Ok(None) => true,
        Err(e) => {
            tracing::debug!(%format, error = %e, "VIDIOC_ENUM_FRAMEINTERVALS failed");
            true
        }
    }
}

/// Picks the format to ask for among those `offered`: the first raw format (in the order of
/// [`PixelFormat::PREFERENCE`]) that gives the requested size and rate; else MJPEG if it gives
/// them (many USB webcams send 640x480 and above at 30 fps only as MJPEG: raw YUYV at that size
/// and rate does not fit USB 2.0); else the first raw format offered (the driver adjusts size
/// and rate, as it always did), else MJPEG. `None` if the device offers neither.
fn choose_format(
    device: &mut dyn V4l2Device,
    offered: &[FormatDesc],
    req: &SourceRequest,
) -> Option<CaptureFormat> {
    let raw = PixelFormat::PREFERENCE.into_iter().map(CaptureFormat::Raw);
    let candidates: Vec<CaptureFormat> = raw
        .chain([CaptureFormat::Mjpeg])
        .filter(|f| offered.iter().any(|d| d.fourcc == f.fourcc()))
        .collect();
    let fits = candidates
        .iter()
        .copied()
        .find(|f| offers(device, f.fourcc(), req));
    if fits == Some(CaptureFormat::Mjpeg) {
        tracing::info!(
            size = %format_args!("{}x{}", req.width, req.height),
            fps = %format_args!("{}/{}", req.fps_num, req.fps_den),
            "the camera gives this size and rate only as MJPEG; decoding it (CPU cost: README, \
             \"Cameras\")"
        );
    }
    fits.or_else(|| candidates.first().copied())
}

impl V4l2Source {
    /// Opens the capture device at `path` and prepares streaming as close to `req` as the
    /// driver allows (it may change the size and rate; [`FrameSource::info`] reports what it
    /// chose). The stream starts on the first `capture`.
    ///
    /// Errors: no device → [`ErrorKind::NotFound`]; in use → [`ErrorKind::Busy`]; no access →
    /// [`ErrorKind::PermissionDenied`]; not a streaming capture device, or no raw YUV format
    /// this crate converts → [`ErrorKind::UnsupportedFormat`] / [`ErrorKind::InvalidInput`].
    pub fn open(path: &Path, req: &SourceRequest) -> Result<Self, CameraError> {
        Self::open_oriented(path, req, Orientation::default())
    }

    /// Like [`V4l2Source::open`], on a `device` the caller opened (`path` names it in
    /// messages): a [`SysDevice`], or in tests a fake camera or a fault-injecting wrapper.
    pub fn open_device(
        path: &Path,
        req: &SourceRequest,
        device: Box<dyn V4l2Device>,
    ) -> Result<Self, CameraError> {
        Self::open_device_oriented(path, req, Orientation::default(), device)
    }

    /// Opens `path` with the picture flipped as `o` says by the camera's own `HFLIP`/`VFLIP`
    /// controls; [`V4l2Source::flipped`] tells whether it could (most UVC webcams cannot: the
    /// caller then flips each frame).
    pub fn open_oriented(
        path: &Path,
        req: &SourceRequest,
        o: Orientation,
    ) -> Result<Self, CameraError> {
        check_request(path, req)?;
        let device = SysDevice::open(path).map_err(|e| device_error(path, "open", &e))?;
        Self::open_device_oriented(path, req, o, Box::new(device))
    }

    /// [`V4l2Source::open_oriented`] on a `device` the caller opened.
    pub fn open_device_oriented(
        path: &Path,
        req: &SourceRequest,
        o: Orientation,
        mut device: Box<dyn V4l2Device>,
    ) -> Result<Self, CameraError> {
        check_request(path, req)?;
        let shown = path.display();
        let caps = device
            .query_caps()
            .map_err(|e| device_error(path, "VIDIOC_QUERYCAP", &e))?;
        if !caps.capture {
            let hint = if caps.capture_mplane {
                "it only offers the multi-planar capture API, which this build does not support"
            } else {
                "it is not a video capture node (maybe a metadata or output node of the same \
                 camera; try the other /dev/videoN, `v4l2-ctl --list-devices` lists them)"
            };
            return Err(CameraError::new(
                ErrorKind::UnsupportedFormat,
                format!("cannot capture from {shown} ({}): {hint}", caps.card),
            ));
        }
        if !caps.streaming {
            return Err(CameraError::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{shown} ({}) does not support streaming I/O, which the node needs",
                    caps.card
                ),
            ));
        }

        let offered = device
            .enum_formats()
            .map_err(|e| device_error(path, "VIDIOC_ENUM_FMT", &e))?;
        let Some(wanted) = choose_format(device.as_mut(), &offered, req) else {
            let list: Vec<String> = offered
                .iter()
                .map(|d| format!("{} ({})", fourcc_text(d.fourcc), d.description))
                .collect();
            let list = if list.is_empty() {
                "nothing".to_string()
            } else {
                list.join(", ")
            };
            return Err(CameraError::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{shown} ({}) offers {list}, but the node needs raw YUV (one of YU12, YV12, \
                     NV12, NV21, YUYV, UYVY or YVYU) or MJPEG",
                    caps.card
                ),
            ));
        };

        let format = device
            .set_format(PixFormat {
                width: req.width,
                height: req.height,
                fourcc: wanted.fourcc(),
                stride: 0,
            })
            .map_err(|e| device_error(path, "VIDIOC_S_FMT", &e))?;
        let Some(capture_format) = CaptureFormat::from_fourcc(format.fourcc) else {
            return Err(CameraError::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{shown} ({}) switched to format {} when asked for {wanted}; the node needs \
                     raw YUV or MJPEG",
                    caps.card,
                    fourcc_text(format.fourcc)
                ),
            ));
        };
        let (width, height) = (format.width, format.height);
        // The raw converters work on 2x2 blocks; the MJPEG decoder takes any size.
        let odd = width % 2 != 0 || height % 2 != 0;
        if width == 0 || height == 0 || (odd && capture_format != CaptureFormat::Mjpeg) {
            return Err(CameraError::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{shown} ({}) chose {width}x{height} when asked for {}x{}; the node needs an \
                     even, non-zero size: ask for another size",
                    caps.card, req.width, req.height
                ),
            ));
        }
        if (width, height) != (req.width, req.height) {
            tracing::info!(
                device = %shown,
                requested = %format_args!("{}x{}", req.width, req.height),
                chosen = %format_args!("{width}x{height}"),
                "camera adjusted the picture size"
            );
        }
        let (stride, mjpeg) = match capture_format {
            CaptureFormat::Raw(raw) => {
                let stride = match format.stride as usize {
                    0 => raw.min_stride(width),
                    s => s,
                };
                (stride, None)
            }
            CaptureFormat::Mjpeg => (0, Some(MjpegDecoder::new(width, height)?)),
        };

        // Frame interval is seconds per frame: den/num of the rate.
        let (fps_num, fps_den) = match device.set_interval(req.fps_den, req.fps_num) {
            Ok(Some((num, den))) => (den, num),
            _ => {
                tracing::info!(
                    device = %shown,
                    "camera does not report its frame interval; assuming the requested rate"
                );
                (req.fps_num, req.fps_den)
            }
        };

        // Flips by the camera when it has the controls (vivid and some sensors do, most UVC
        // webcams do not); without a flip asked for, the controls are left as they are.
        let flipped = !o.is_identity()
            && match device.set_flip(o.hflip, o.vflip) {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!(
                        device = %shown,
                        error = %e,
                        "camera cannot flip the picture itself; the node flips each frame"
                    );
                    false
                }
            };

        let granted = device
            .request_buffers(req.buffers)
            .map_err(|e| device_error(path, "VIDIOC_REQBUFS (buffer allocation)", &e))?;
        if granted == 0 {
            return Err(CameraError::new(
                ErrorKind::Other,
                format!(
                    "{shown} ({}) allocated no capture buffers (asked for {}); the driver is \
                     out of memory: try fewer buffers or a smaller size",
                    caps.card, req.buffers
                ),
            ));
        }
        let mut source = Self {
            device: Some(device),
            path: path.to_path_buf(),
            card: caps.card,
            driver: caps.driver,
            format: capture_format,
            mjpeg,
            width,
            height,
            stride,
            fps_num,
            fps_den,
            buffers: granted,
            streaming: false,
            queued: vec![false; granted as usize],
            held: None,
            seq_high: 0,
            last_seq: None,
            broken: None,
            flipped,
        };
        // From here on a failure drops `source`, which tears down what was set up.
        for index in 0..granted {
            let mapped = match source.device.as_mut() {
                Some(device) => device.map_buffer(index),
                None => Ok(()),
            };
            mapped.map_err(|e| device_error(path, "mmap of a capture buffer", &e))?;
        }

        tracing::info!(
            device = %shown,
            card = %source.card,
            driver = %source.driver,
            format = %capture_format,
            %width,
            %height,
            %stride,
            fps = %format_args!("{fps_num}/{fps_den}"),
            buffers = granted,
            "camera opened"
        );
        Ok(source)
    }

    /// Whether the camera flips the picture as asked (`false` also when no flip was asked).
    pub fn flipped(&self) -> bool {
        self.flipped
    }

    /// The format negotiated with the device.
    pub fn capture_format(&self) -> CaptureFormat {
        self.format
    }

    /// The raw pixel format negotiated with the device (`None` for MJPEG).
    pub fn pixel_format(&self) -> Option<PixelFormat> {
        match self.format {
            CaptureFormat::Raw(raw) => Some(raw),
            CaptureFormat::Mjpeg => None,
        }
    }

    /// Bytes per row of the device's buffers.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Stops the stream, unmaps and frees the buffers and closes the device. Every step is
    /// tried whatever failed before it, and the device is closed in any case (which frees what
    /// the driver still held); a failed step is reported in the error, whose kind is that of
    /// the first failure. Dropping the source does the same and logs the error.
    pub fn close(mut self) -> Result<(), CameraError> {
        self.teardown().map_err(|(e, _)| e)
    }

    /// Extends the driver's 32-bit sequence number to 64 bits.
    fn extend_seq(&mut self, seq: u32) -> u64 {
        if let Some(last) = self.last_seq
            && seq < last
            && last - seq > u32::MAX / 2
        {
            self.seq_high += 1 << 32;
        }
        self.last_seq = Some(seq);
        self.seq_high + u64::from(seq)
    }

    /// The error for streaming step `what`; marks the source broken when the stream cannot go
    /// on (device gone, I/O error, timeout, or the driver refusing the buffer bookkeeping).
    fn stream_error(&mut self, what: &str, err: &io::Error) -> CameraError {
        let error = device_error(&self.path, what, err);
        if error.kind() == ErrorKind::Disconnected || err.raw_os_error() == Some(EINVAL) {
            self.broken = Some(error.to_string());
        }
        error
    }

    /// Queues every buffer the driver does not hold and starts the stream; afterwards, gives
    /// the buffer the caller read last back to the driver.
    fn feed(&mut self) -> Result<(), CameraError> {
        let Some(device) = self.device.as_mut() else {
            return Err(CameraError::new(
                ErrorKind::Disconnected,
                format!(
                    "camera {} is closed; reopen the source",
                    self.path.display()
                ),
            ));
        };
        let result = if self.streaming {
            match self.held {
                Some(index) => device.queue(index).map(|()| {
                    self.held = None;
                    self.queued[index as usize] = true;
                }),
                None => Ok(()),
            }
            .map_err(|e| ("VIDIOC_QBUF", e))
        } else {
            let mut result = Ok(());
            for (index, queued) in self.queued.iter_mut().enumerate() {
                if !*queued {
                    if let Err(e) = device.queue(index as u32) {
                        result = Err(("VIDIOC_QBUF", e));
                        break;
                    }
                    *queued = true;
                }
            }
            self.held = None;
            result.and_then(|()| {
                device
                    .stream_on()
                    .map(|()| self.streaming = true)
                    .map_err(|e| ("VIDIOC_STREAMON", e))
            })
        };
        result.map_err(|(what, e)| self.stream_error(what, &e))
    }

    /// Tears the stream down (see [`V4l2Source::close`]); a no-op once done. The flag with an
    /// error says every failed step failed because the device is gone (ENODEV: unplugged).
    fn teardown(&mut self) -> Result<(), (CameraError, bool)> {
        let Some(mut device) = self.device.take() else {
            return Ok(());
        };
        let mut failed: Vec<(&'static str, io::Error)> = Vec::new();
        if (self.streaming || self.queued.contains(&true))
            && let Err(e) = device.stream_off()
        {
            failed.push(("VIDIOC_STREAMOFF", e));
        }
        self.streaming = false;
        self.queued.fill(false);
        self.held = None;
        if let Err(e) = device.unmap_buffers() {
            failed.push(("munmap", e));
        }
        if let Err(e) = device.release_buffers() {
            failed.push(("VIDIOC_REQBUFS(0)", e));
        }
        // Closing the file frees whatever the steps above could not.
        drop(device);
        let Some((what, first)) = failed.first() else {
            tracing::debug!(device = %self.path.display(), "camera closed");
            return Ok(());
        };
        for (step, e) in &failed {
            tracing::debug!(device = %self.path.display(), step, error = %e, "camera teardown step failed");
        }
        let gone = failed.iter().all(|(_, e)| e.raw_os_error() == Some(ENODEV));
        let cause = device_error(&self.path, what, first);
        let steps: Vec<&str> = failed.iter().map(|(step, _)| *step).collect();
        let error = CameraError::new(
            cause.kind(),
            format!(
                "closing camera {}: {} failed; the device was closed anyway, which frees what \
                 the driver still held ({cause})",
                self.path.display(),
                steps.join(", ")
            ),
        );
        Err((error, gone))
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        match self.teardown() {
            Ok(()) => {}
            // A camera that was pulled out fails its teardown as expected: no warning.
            Err((e, true)) => tracing::debug!(error = %e, "camera teardown after unplug"),
            Err((e, false)) => tracing::warn!(error = %e, "camera teardown failed"),
        }
    }
}

impl FrameSource for V4l2Source {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "v4l2",
            description: format!(
                "{} ({}, driver {}), {} {}x{} stride {}, {} buffers{}",
                self.path.display(),
                self.card,
                self.driver,
                self.format,
                self.width,
                self.height,
                self.stride,
                self.buffers,
                if self.flipped {
                    ", flipped by the camera"
                } else {
                    ""
                }
            ),
            width: self.width,
            height: self.height,
            fps_num: self.fps_num,
            fps_den: self.fps_den,
        }
    }

    fn pacing(&self) -> Pacing {
        Pacing::Device
    }

    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        if let Some(reason) = &self.broken {
            return Err(CameraError::new(
                ErrorKind::Disconnected,
                format!("{reason} (the stream stopped; reopen the source)"),
            ));
        }
        if frame.width() != self.width || frame.height() != self.height {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "frame is {}x{} but {} delivers {}x{}: allocate frames with the size from \
                     info()",
                    frame.width(),
                    frame.height(),
                    self.path.display(),
                    self.width,
                    self.height
                ),
            ));
        }
        self.feed()?;
        let dequeued = match self.device.as_mut() {
            Some(device) => device.dequeue(DEQUEUE_TIMEOUT),
            None => Err(io::Error::from_raw_os_error(ENODEV)),
        };
        let next = dequeued.map_err(|e| self.stream_error("VIDIOC_DQBUF", &e))?;
        let capture_us = clock.now_us();
        let index = next.index as usize;
        if self.queued.get(index) != Some(&true) {
            let error = CameraError::new(
                ErrorKind::Other,
                format!(
                    "camera {} handed back buffer {index}, which it did not hold ({} buffers); \
                     reopen the source",
                    self.path.display(),
                    self.buffers
                ),
            );
            self.broken = Some(error.to_string());
            return Err(error);
        }
        self.queued[index] = false;
        self.held = Some(next.index);
        let (format, stride, width, height) = (self.format, self.stride, self.width, self.height);
        let Some(buf) = self.device.as_ref().and_then(|d| d.buffer(next.index)) else {
            return Err(CameraError::new(
                ErrorKind::Other,
                format!(
                    "capture buffer {index} of {} is not mapped",
                    self.path.display()
                ),
            ));
        };
        let used = next.bytes_used as usize;
        let data = match buf.get(..used) {
            Some(data) if used > 0 => data,
            // A driver that does not fill in `bytesused` (raw formats: the size is known).
            _ if format != CaptureFormat::Mjpeg => buf,
            // An MJPEG frame's length is only in `bytesused`.
            _ => &[],
        };
        match (format, self.mjpeg.as_mut()) {
            (CaptureFormat::Raw(raw), _) => raw.to_i420(data, stride, width, height, frame)?,
            // A corrupt frame is an error for this frame only: the buffer is queued again on
            // the next call, the stream goes on.
            (CaptureFormat::Mjpeg, Some(decoder)) => decoder.decode(data, frame)?,
            (CaptureFormat::Mjpeg, None) => {
                return Err(CameraError::new(
                    ErrorKind::Other,
                    "MJPEG stream without a decoder (a bug); reopen the source",
                ));
            }
        }
        frame.capture_us = capture_us;
        frame.seq = self.extend_seq(next.sequence);
        Ok(())
    }

    fn close(mut self: Box<Self>) -> Result<(), CameraError> {
        self.teardown().map_err(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_device_is_not_found() {
        let path = Path::new("/dev/sutantra-test-no-such-video7");
        let err = V4l2Source::open(path, &SourceRequest::default()).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = err.to_string();
        assert!(msg.contains("/dev/sutantra-test-no-such-video7"), "{msg}");
        assert!(msg.contains("ls /dev/video*"), "{msg}");
    }

    #[test]
    fn dev_null_is_a_clear_error() {
        let err = V4l2Source::open(Path::new("/dev/null"), &SourceRequest::default())
            .expect_err("/dev/null is no camera");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let msg = err.to_string();
        assert!(msg.contains("/dev/null"), "{msg}");
        assert!(msg.contains("not a V4L2 video device"), "{msg}");
    }

    #[test]
    fn bad_requests_are_rejected_before_opening() {
        let path = Path::new("/dev/null");
        for req in [
            SourceRequest {
                buffers: 0,
                ..SourceRequest::default()
            },
            SourceRequest {
                buffers: MAX_BUFFERS + 1,
                ..SourceRequest::default()
            },
            SourceRequest {
                fps_num: 0,
                ..SourceRequest::default()
            },
        ] {
            let err = V4l2Source::open(path, &req).expect_err("bad request");
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
        let err = V4l2Source::open(Path::new("/dev/vid\0eo0"), &SourceRequest::default())
            .expect_err("NUL");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn errno_mapping() {
        let p = Path::new("/dev/video3");
        let kind = |code| device_error(p, "open", &io::Error::from_raw_os_error(code)).kind();
        assert_eq!(kind(ENOENT), ErrorKind::NotFound);
        assert_eq!(kind(EBUSY), ErrorKind::Busy);
        assert_eq!(kind(EACCES), ErrorKind::PermissionDenied);
        assert_eq!(kind(EPERM), ErrorKind::PermissionDenied);
        assert_eq!(kind(ENODEV), ErrorKind::Disconnected);
        assert_eq!(kind(ENOTTY), ErrorKind::InvalidInput);
        assert_eq!(kind(ENOSYS), ErrorKind::InvalidInput);
        assert_eq!(kind(EINVAL), ErrorKind::Other);
        let busy = device_error(p, "VIDIOC_S_FMT", &io::Error::from_raw_os_error(EBUSY));
        assert!(busy.to_string().contains("fuser /dev/video3"), "{busy}");
        let denied = device_error(p, "open", &io::Error::from_raw_os_error(EACCES));
        assert!(denied.to_string().contains("`video` group"), "{denied}");
        let timeout = device_error(p, "VIDIOC_DQBUF", &io::Error::from(io::ErrorKind::TimedOut));
        assert_eq!(timeout.kind(), ErrorKind::Disconnected);
    }

    #[test]
    fn errno_mapping_mid_stream() {
        let p = Path::new("/dev/video3");
        let err = |code| device_error(p, "VIDIOC_DQBUF", &io::Error::from_raw_os_error(code));
        for (code, phrase) in [
            (EIO, "input/output error"),
            (ENXIO, "went away"),
            (ETIMEDOUT, "did not answer in time"),
        ] {
            let e = err(code);
            assert_eq!(e.kind(), ErrorKind::Disconnected, "{e}");
            let msg = e.to_string();
            assert!(msg.contains(phrase), "{msg}");
            assert!(
                msg.contains("/dev/video3") && msg.contains("VIDIOC_DQBUF"),
                "{msg}"
            );
            assert!(msg.contains("reopen the source"), "{msg}");
        }
    }

    use fake::{EBUSY, FakeCamera, Faults, Faulty, Op};

    const CAM: &str = "/dev/video-fake";

    fn request() -> SourceRequest {
        SourceRequest {
            width: 64,
            height: 48,
            fps_num: 100,
            fps_den: 1,
            buffers: 3,
        }
    }

    /// A source on a fresh fake camera (100 fps, luma 77), through a fault injector.
    fn fake_source() -> (V4l2Source, FakeCamera, Faults) {
        let camera = FakeCamera::new(100, 77);
        let faults = Faults::new();
        let device = Faulty::new(camera.open().expect("open fake"), faults.clone());
        let source = V4l2Source::open_device(Path::new(CAM), &request(), Box::new(device))
            .expect("negotiate with the fake");
        (source, camera, faults)
    }

    fn grab(source: &mut V4l2Source) -> Result<I420Frame, CameraError> {
        let mut frame = I420Frame::new(64, 48);
        source.capture(&mut frame, &crate::camera::FixedClock(5))?;
        Ok(frame)
    }

    fn teardown_calls(camera: &FakeCamera) -> Vec<&'static str> {
        let log = camera.log();
        let from = log
            .iter()
            .rposition(|&c| c == "STREAMON")
            .map_or(0, |i| i + 1);
        log[from..].to_vec()
    }

    const ERRNOS: [i32; 3] = [EIO, ENXIO, ETIMEDOUT];

    #[test]
    fn flips_go_to_the_cameras_controls_when_it_has_them_else_to_the_node() {
        let turned = Orientation::new(false, false, 180).expect("180");
        // With the controls (vivid, some sensors): the camera flips, the node does nothing.
        let camera = FakeCamera::new(100, 77).with_flip_controls();
        let device = Box::new(camera.open().expect("open fake"));
        let source = V4l2Source::open_device_oriented(Path::new(CAM), &request(), turned, device)
            .expect("open");
        assert!(source.flipped());
        assert_eq!(camera.flips(), Some((true, true)));
        assert!(source.info().description.contains("flipped by the camera"));
        drop(source);
        // Without (most UVC webcams): not flipped here, so `open_oriented` wraps the source
        // in the node's own flip (camera::orient).
        let camera = FakeCamera::new(100, 77);
        let device = Box::new(camera.open().expect("open fake"));
        let source = V4l2Source::open_device_oriented(Path::new(CAM), &request(), turned, device)
            .expect("a camera without flip controls still opens");
        assert!(!source.flipped());
        assert_eq!(camera.flips(), None);
        drop(source);
        // No flip asked for: the controls are left alone.
        let camera = FakeCamera::new(100, 77).with_flip_controls();
        let device = Box::new(camera.open().expect("open fake"));
        let source = V4l2Source::open_device(Path::new(CAM), &request(), device).expect("open");
        assert!(!source.flipped());
        assert!(!camera.log().contains(&"S_CTRL(flip)"));
    }

    #[test]
    fn the_fake_camera_streams_and_closes_cleanly() {
        let (mut source, camera, _faults) = fake_source();
        assert_eq!(source.pixel_format(), Some(PixelFormat::Yuyv));
        assert_eq!(source.info().fps_num, 100);
        for n in 0..3 {
            let frame = grab(&mut source).expect("frame");
            assert_eq!(frame.planes().0[0], 77);
            assert!(frame.seq >= n);
        }
        source.close().expect("clean teardown");
        assert_eq!(
            teardown_calls(&camera),
            ["STREAMOFF", "munmap", "REQBUFS(0)", "close"]
        );
        assert_eq!(camera.open_handles(), 0);
    }

    /// EIO, ENXIO and ETIMEDOUT on VIDIOC_DQBUF: a clear `Disconnected` error naming the step,
    /// the source refuses further captures (it must be reopened), and its teardown releases
    /// everything and closes the device.
    #[test]
    fn dequeue_faults_are_clear_errors_and_teardown_still_releases() {
        for errno in ERRNOS {
            let (mut source, camera, faults) = fake_source();
            grab(&mut source).expect("first frame");
            faults.fail_next(Op::Dequeue, errno);
            let err = grab(&mut source).expect_err("dequeue fault");
            assert_eq!(err.kind(), ErrorKind::Disconnected, "errno {errno}: {err}");
            let msg = err.to_string();
            assert!(msg.contains("VIDIOC_DQBUF") && msg.contains(CAM), "{msg}");
            let again = grab(&mut source).expect_err("broken stream");
            assert_eq!(again.kind(), ErrorKind::Disconnected);
            assert!(again.to_string().contains("reopen the source"), "{again}");
            assert_eq!(faults.fired(), [(Op::Dequeue, errno)]);
            source.close().expect("teardown after a dequeue fault");
            assert_eq!(
                teardown_calls(&camera),
                ["STREAMOFF", "munmap", "REQBUFS(0)", "close"]
            );
            assert_eq!(camera.open_handles(), 0);
        }
    }

    /// A failed VIDIOC_STREAMOFF: no panic, an error naming it (kind from its errno), and the
    /// rest of the teardown is still tried: the buffers are unmapped, freeing them is tried
    /// (the fake, like videobuf2, answers EBUSY while the stream still runs) and the device is
    /// closed, which frees them.
    #[test]
    fn a_failed_stream_off_still_unmaps_and_closes() {
        for errno in ERRNOS {
            let (mut source, camera, faults) = fake_source();
            grab(&mut source).expect("frame");
            faults.fail_next(Op::StreamOff, errno);
            let err = source.close().expect_err("stream-off fault");
            assert_eq!(err.kind(), ErrorKind::Disconnected, "errno {errno}: {err}");
            let msg = err.to_string();
            assert!(
                msg.contains("VIDIOC_STREAMOFF, VIDIOC_REQBUFS(0) failed"),
                "{msg}"
            );
            assert!(msg.contains("closed anyway"), "{msg}");
            assert_eq!(
                teardown_calls(&camera),
                ["munmap", "REQBUFS(0)", "close"],
                "the failed STREAMOFF never reached the fake"
            );
            assert_eq!(camera.open_handles(), 0);
        }
    }

    /// A failed VIDIOC_REQBUFS(0) (buffer release), and a failed munmap: the error names the
    /// step; stream-off ran before, and the device is closed.
    #[test]
    fn failed_buffer_release_still_closes() {
        for errno in ERRNOS {
            for op in [Op::Release, Op::Unmap] {
                let (mut source, camera, faults) = fake_source();
                grab(&mut source).expect("frame");
                faults.fail_next(op, errno);
                let err = source.close().expect_err("release fault");
                assert_eq!(err.kind(), ErrorKind::Disconnected, "errno {errno}: {err}");
                let step = if op == Op::Release {
                    "VIDIOC_REQBUFS(0) failed"
                } else {
                    "munmap failed"
                };
                assert!(err.to_string().contains(step), "{err}");
                let calls = teardown_calls(&camera);
                assert_eq!(calls[0], "STREAMOFF");
                assert_eq!(calls.last(), Some(&"close"));
                assert_eq!(camera.open_handles(), 0);
            }
        }
    }

    /// Every teardown step failing, through `Drop` (as the capture thread closes a failed
    /// camera): no panic, the device is closed.
    #[test]
    fn every_teardown_step_failing_in_drop_does_not_panic() {
        let (mut source, camera, faults) = fake_source();
        grab(&mut source).expect("frame");
        faults.fail_next(Op::Dequeue, EIO);
        faults.fail_always(Op::StreamOff, EIO);
        faults.fail_always(Op::Unmap, ENXIO);
        faults.fail_always(Op::Release, ETIMEDOUT);
        assert!(grab(&mut source).is_err());
        drop(source);
        assert_eq!(camera.open_handles(), 0);
        let fired: Vec<Op> = faults.fired().iter().map(|f| f.0).collect();
        assert_eq!(fired, [Op::Dequeue, Op::StreamOff, Op::Unmap, Op::Release]);
    }

    /// Faults on VIDIOC_QBUF and VIDIOC_STREAMON are errors too, and a fresh source on the
    /// same camera streams again afterwards.
    #[test]
    fn queue_and_stream_on_faults_then_reopen() {
        for (op, errno) in [
            (Op::StreamOn, EIO),
            (Op::Queue, ETIMEDOUT),
            (Op::Queue, ENXIO),
        ] {
            let (mut source, camera, faults) = fake_source();
            if op == Op::Queue {
                grab(&mut source).expect("frame");
            }
            faults.fail_next(op, errno);
            let err = grab(&mut source).expect_err("fault");
            assert_eq!(err.kind(), ErrorKind::Disconnected, "{op:?} {errno}: {err}");
            drop(source);
            assert_eq!(camera.open_handles(), 0);
            let device = Faulty::new(camera.open().expect("reopen"), faults.clone());
            let mut source = V4l2Source::open_device(Path::new(CAM), &request(), Box::new(device))
                .expect("reopen");
            assert_eq!(grab(&mut source).expect("frame").planes().0[0], 77);
        }
    }

    /// A camera pulled out mid-stream: ENODEV everywhere; the teardown fails quietly (only
    /// munmap works) and the device is closed, so its number is freed for the camera's return.
    #[test]
    fn an_unplugged_camera_is_closed() {
        let (mut source, camera, _faults) = fake_source();
        grab(&mut source).expect("frame");
        camera.set_present(false);
        let err = grab(&mut source).expect_err("unplugged");
        assert_eq!(err.kind(), ErrorKind::Disconnected);
        let err = source.close().expect_err("teardown on a gone device");
        assert!(err.to_string().contains("no such device"), "{err}");
        assert_eq!(camera.open_handles(), 0);
        assert_eq!(
            camera
                .open()
                .map(drop)
                .expect_err("still out")
                .raw_os_error(),
            Some(ENOENT)
        );
        camera.set_present(true);
        drop(camera.open().expect("back"));
    }

    /// The fake keeps videobuf2's rules, so the source's bookkeeping is checked by it: freeing
    /// mapped buffers is refused.
    #[test]
    fn the_fake_refuses_freeing_mapped_buffers() {
        let camera = FakeCamera::new(30, 1);
        let mut dev = camera.open().expect("open");
        assert_eq!(dev.request_buffers(2).expect("alloc"), 2);
        dev.map_buffer(0).expect("map");
        let busy = dev.release_buffers().expect_err("mapped");
        assert_eq!(busy.raw_os_error(), Some(EBUSY));
        dev.unmap_buffers().expect("unmap");
        dev.release_buffers().expect("free");
    }

    #[test]
    fn faults_fire_at_the_chosen_call() {
        let faults = Faults::new();
        faults.fail_after(Op::Dequeue, 2, EIO);
        let camera = FakeCamera::new(200, 9);
        let device = Faulty::new(camera.open().expect("open"), faults.clone());
        let mut source =
            V4l2Source::open_device(Path::new(CAM), &request(), Box::new(device)).expect("open");
        grab(&mut source).expect("1");
        grab(&mut source).expect("2");
        assert!(grab(&mut source).is_err());
        assert_eq!(faults.calls(Op::Dequeue), 3);
        assert_eq!(faults.fired(), [(Op::Dequeue, EIO)]);
    }

    fn mjpeg_fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/data/mjpeg/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn request_at(width: u32, height: u32, fps: u32) -> SourceRequest {
        SourceRequest {
            width,
            height,
            fps_num: fps,
            fps_den: 1,
            buffers: 3,
        }
    }

    fn open_on(camera: &FakeCamera, req: &SourceRequest) -> V4l2Source {
        let device = Faulty::new(camera.open().expect("open fake"), Faults::new());
        V4l2Source::open_device(Path::new(CAM), req, Box::new(device)).expect("negotiate")
    }

    /// A webcam that sends MJPEG only: negotiation picks MJPEG, frames decode (with and without
    /// Huffman tables), and a corrupt or truncated frame is a `CorruptFrame` error for that
    /// frame only: the next capture on the same open device delivers again, no reopen.
    #[test]
    fn an_mjpeg_camera_streams_and_skips_corrupt_frames() {
        let frames = [
            "422_160x120.jpg",
            "corrupt_422_160x120.jpg",
            "420_160x120.jpg",
            "nodht_422_160x120.jpg",
            "truncated_422_160x120.jpg",
        ];
        let camera = FakeCamera::mjpeg(
            200,
            160,
            120,
            frames.iter().map(|f| mjpeg_fixture(f)).collect(),
        );
        let mut source = open_on(&camera, &request_at(160, 120, 30));
        assert_eq!(source.capture_format(), CaptureFormat::Mjpeg);
        assert_eq!(source.pixel_format(), None);
        let info = source.info();
        assert_eq!((info.width, info.height, info.fps_num), (160, 120, 200));
        assert!(info.description.contains("MJPG"), "{}", info.description);
        let reference = mjpeg_fixture("422_160x120.yuv");
        let mut frame = I420Frame::new(160, 120);
        let mut corrupt = 0;
        let mut good = 0;
        for n in 0..2 * frames.len() {
            match source.capture(&mut frame, &crate::camera::FixedClock(5)) {
                Ok(()) => {
                    good += 1;
                    if n % frames.len() == 0 {
                        let (y, _, _) = frame.planes();
                        let worst = y.iter().zip(&reference).map(|(a, b)| a.abs_diff(*b)).max();
                        assert!(worst <= Some(1), "luma off by {worst:?}");
                    }
                }
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::CorruptFrame, "frame {n}: {e}");
                    assert!(matches!(n % frames.len(), 1 | 4), "frame {n}: {e}");
                    corrupt += 1;
                }
            }
        }
        assert_eq!((good, corrupt), (6, 4));
        assert_eq!(camera.delivered(), 2 * frames.len());
        assert_eq!(
            camera.opens(),
            1,
            "a corrupt frame must not reopen the camera"
        );
        source.close().expect("clean teardown");
        assert_eq!(camera.open_handles(), 0);
    }

    /// Raw YUYV is preferred when the camera lists it at the requested size and rate; MJPEG
    /// when YUYV is too slow at that size or not offered at it.
    #[test]
    fn raw_is_preferred_when_it_gives_the_size_and_rate() {
        let jpegs = || vec![mjpeg_fixture("422_160x120.jpg")];
        let cases = [
            (
                (160, 120, 30),
                (160, 120, 30),
                CaptureFormat::Raw(PixelFormat::Yuyv),
            ),
            ((160, 120, 10), (160, 120, 30), CaptureFormat::Mjpeg),
            (
                (160, 120, 10),
                (160, 120, 10),
                CaptureFormat::Raw(PixelFormat::Yuyv),
            ),
            ((64, 48, 30), (160, 120, 30), CaptureFormat::Mjpeg),
        ];
        for ((w, h, fps), (rw, rh, rfps), expected) in cases {
            let camera = FakeCamera::mjpeg(30, 160, 120, jpegs());
            camera.add_yuyv_mode(w, h, fps);
            let mut source = open_on(&camera, &request_at(rw, rh, rfps));
            assert_eq!(
                source.capture_format(),
                expected,
                "YUYV {w}x{h}@{fps}, asked {rw}x{rh}@{rfps}"
            );
            let mut frame = I420Frame::new(source.info().width, source.info().height);
            source
                .capture(&mut frame, &crate::camera::FixedClock(5))
                .expect("a frame");
        }
    }

    /// MJPEG takes odd sizes (the raw converters need even ones).
    #[test]
    fn an_mjpeg_camera_at_an_odd_size() {
        let camera = FakeCamera::mjpeg(200, 321, 241, vec![mjpeg_fixture("420_321x241.jpg")]);
        let mut source = open_on(&camera, &request_at(321, 241, 30));
        let mut frame = I420Frame::new(321, 241);
        source
            .capture(&mut frame, &crate::camera::FixedClock(5))
            .expect("odd-size frame");
        let reference = mjpeg_fixture("420_321x241.yuv");
        let (y, _, _) = frame.planes();
        assert!(y.iter().zip(&reference).all(|(a, b)| a.abs_diff(*b) <= 1));
    }

    #[test]
    fn frame_sizes_and_intervals_match_requests() {
        let sizes = FrameSizes::Stepwise {
            min: (16, 16),
            max: (1920, 1080),
            step: (2, 2),
        };
        assert!(sizes.contains(640, 480));
        assert!(!sizes.contains(641, 480));
        assert!(!sizes.contains(2000, 480));
        assert!(FrameSizes::Discrete(vec![(640, 480)]).contains(640, 480));
        assert!(!FrameSizes::Discrete(vec![(640, 480)]).contains(320, 240));
        // 30 fps as cameras report it, and 1/30 exactly; 15 fps is too slow for 30.
        let uvc = FrameIntervals::Discrete(vec![(333_333, 10_000_000), (1, 15)]);
        assert!(uvc.reach(30, 1));
        assert!(uvc.reach(30_000, 1001));
        assert!(!uvc.reach(60, 1));
        assert!(!FrameIntervals::Discrete(vec![(1, 15)]).reach(30, 1));
        let range = FrameIntervals::Stepwise {
            min: (1, 60),
            max: (1, 1),
        };
        assert!(range.reach(60, 1) && !range.reach(120, 1));
        assert!(!FrameIntervals::Discrete(vec![(1, 0)]).reach(1, 1));
    }

    #[test]
    fn fourcc_text_is_printable() {
        assert_eq!(fourcc_text(*b"MJPG"), "MJPG");
        assert_eq!(fourcc_text([0, b'A', 0xFF, b' ']), "?A? ");
    }
}
