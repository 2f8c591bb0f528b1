//! `V4l2Source`: capture from a Video4Linux2 device (`--source v4l2:/dev/videoN`).
//!
//! This module owns talking to real cameras through the `v4l` crate: checking the node is a
//! streaming capture device, negotiating a raw YUV format (preferring, in order, the formats of
//! [`PixelFormat::PREFERENCE`]: YU12, YV12, NV12, NV21, YUYV, UYVY, YVYU), size and frame
//! interval (the driver may adjust them; what it reports is what [`FrameSource::info`] says),
//! streaming through a fixed set of mmap buffers allocated once, and converting each dequeued
//! buffer into the caller's [`I420Frame`] with [`super::convert`]. Every failure an operator
//! can meet (no device, busy, no permission, no usable format, unplugged) maps to an
//! [`ErrorKind`] with a message that says what to do.
//!
//! The device is paced by the camera ([`Pacing::Device`]): `capture` blocks until the driver
//! hands over the next buffer, at most [`DEQUEUE_TIMEOUT`].

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use v4l::buffer::Type;
use v4l::capability::Flags as CapFlags;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::video::capture::Parameters;
use v4l::{Device, Format, FourCC, Fraction};

use super::convert::PixelFormat;
use super::spec::SourceRequest;
use super::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, WallClock};
use crate::frame::I420Frame;

/// Longest `capture` waits for the device before reporting it as gone.
pub const DEQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most capture buffers a source may ask for.
pub const MAX_BUFFERS: u32 = 32;

// errno values (identical on every Linux architecture for these low numbers).
const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const ENXIO: i32 = 6;
const EACCES: i32 = 13;
const EBUSY: i32 = 16;
const ENODEV: i32 = 19;
const EINVAL: i32 = 22;
const ENOTTY: i32 = 25;
/// "Function not implemented": what qemu-user answers for an ioctl it does not emulate (a real
/// kernel says ENOTTY for a file that is not a V4L2 device).
const ENOSYS: i32 = 38;

/// A V4L2 capture device streaming into mmap buffers.
pub struct V4l2Source {
    // Field order is drop order: the stream (STREAMOFF, unmap, free buffers) goes before the
    // device handle. The stream also holds its own `Arc` of the handle, so the file descriptor
    // stays open as long as either needs it.
    stream: Stream<'static>,
    _device: Device,
    path: PathBuf,
    card: String,
    driver: String,
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: usize,
    fps_num: u32,
    fps_den: u32,
    buffers: u32,
    /// Driver sequence numbers are 32-bit; this extends them to 64 bits across wraps.
    seq_high: u64,
    last_seq: Option<u32>,
    /// Set after a failure that leaves the stream unusable; `capture` then reports it again.
    broken: Option<String>,
}

// The capture thread owns the source: it must be `Send` (the `v4l` stream holds an `Arc` of
// the device handle and plain mapped slices, so it is).
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

fn fourcc_text(code: FourCC) -> String {
    code.repr
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}

impl V4l2Source {
    /// Opens the capture device at `path` and starts streaming as close to `req` as the driver
    /// allows (it may change the size and rate; [`FrameSource::info`] reports what it chose).
    ///
    /// Errors: no device → [`ErrorKind::NotFound`]; in use → [`ErrorKind::Busy`]; no access →
    /// [`ErrorKind::PermissionDenied`]; not a streaming capture device, or no raw YUV format
    /// this crate converts → [`ErrorKind::UnsupportedFormat`] / [`ErrorKind::InvalidInput`].
    pub fn open(path: &Path, req: &SourceRequest) -> Result<Self, CameraError> {
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

        let device = Device::with_path(path).map_err(|e| device_error(path, "open", &e))?;
        let caps = device
            .query_caps()
            .map_err(|e| device_error(path, "VIDIOC_QUERYCAP", &e))?;
        let flags = caps.capabilities;
        if !flags.contains(CapFlags::VIDEO_CAPTURE) {
            let hint = if flags.contains(CapFlags::VIDEO_CAPTURE_MPLANE) {
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
        if !flags.contains(CapFlags::STREAMING) {
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
        let chosen = PixelFormat::PREFERENCE
            .into_iter()
            .find(|f| offered.iter().any(|d| d.fourcc.repr == f.fourcc()));
        let Some(wanted) = chosen else {
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
                    "{shown} ({}) offers {list}, but the node needs raw YUV: one of YU12, YV12, \
                     NV12, NV21, YUYV, UYVY or YVYU",
                    caps.card
                ),
            ));
        };

        let requested = Format::new(req.width, req.height, FourCC::new(&wanted.fourcc()));
        let format = device
            .set_format(&requested)
            .map_err(|e| device_error(path, "VIDIOC_S_FMT", &e))?;
        let Some(pixel_format) = PixelFormat::from_fourcc(format.fourcc.repr) else {
            return Err(CameraError::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "{shown} ({}) switched to format {} when asked for {wanted}; the node needs \
                     raw YUV",
                    caps.card,
                    fourcc_text(format.fourcc)
                ),
            ));
        };
        let (width, height) = (format.width, format.height);
        if width == 0 || height == 0 || width % 2 != 0 || height % 2 != 0 {
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
        let stride = match format.stride as usize {
            0 => pixel_format.min_stride(width),
            s => s,
        };

        // Frame interval is seconds per frame: den/num of the rate.
        let wanted_interval = Parameters::new(Fraction::new(req.fps_den, req.fps_num));
        let params = device
            .set_params(&wanted_interval)
            .or_else(|_| device.params());
        let (fps_num, fps_den) = match params {
            Ok(p) if p.interval.numerator > 0 && p.interval.denominator > 0 => {
                (p.interval.denominator, p.interval.numerator)
            }
            _ => {
                tracing::info!(
                    device = %shown,
                    "camera does not report its frame interval; assuming the requested rate"
                );
                (req.fps_num, req.fps_den)
            }
        };

        let mut stream = Stream::with_buffers(&device, Type::VideoCapture, req.buffers)
            .map_err(|e| device_error(path, "VIDIOC_REQBUFS (buffer allocation)", &e))?;
        stream.set_timeout(DEQUEUE_TIMEOUT);

        tracing::info!(
            device = %shown,
            card = %caps.card,
            driver = %caps.driver,
            format = %pixel_format,
            %width,
            %height,
            %stride,
            fps = %format_args!("{fps_num}/{fps_den}"),
            buffers = req.buffers,
            "camera opened"
        );

        Ok(Self {
            stream,
            _device: device,
            path: path.to_path_buf(),
            card: caps.card,
            driver: caps.driver,
            format: pixel_format,
            width,
            height,
            stride,
            fps_num,
            fps_den,
            buffers: req.buffers,
            seq_high: 0,
            last_seq: None,
            broken: None,
        })
    }

    /// The pixel format negotiated with the device.
    pub fn pixel_format(&self) -> PixelFormat {
        self.format
    }

    /// Bytes per row of the device's buffers.
    pub fn stride(&self) -> usize {
        self.stride
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
}

impl FrameSource for V4l2Source {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "v4l2",
            description: format!(
                "{} ({}, driver {}), {} {}x{} stride {}, {} buffers",
                self.path.display(),
                self.card,
                self.driver,
                self.format,
                self.width,
                self.height,
                self.stride,
                self.buffers
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
        let (buf, meta) = match CaptureStream::next(&mut self.stream) {
            Ok(next) => next,
            Err(e) => {
                let err = device_error(&self.path, "VIDIOC_DQBUF", &e);
                // A failed dequeue leaves the v4l stream's queue bookkeeping out of step with
                // the driver (the next call would queue a buffer twice): the source is done.
                if matches!(err.kind(), ErrorKind::Disconnected) || e.raw_os_error() == Some(EINVAL)
                {
                    self.broken = Some(err.to_string());
                }
                return Err(err);
            }
        };
        let capture_us = clock.now_us();
        let used = meta.bytesused as usize;
        let data = if used > 0 && used <= buf.len() {
            &buf[..used]
        } else {
            buf
        };
        let seq = meta.sequence;
        self.format
            .to_i420(data, self.stride, self.width, self.height, frame)?;
        frame.capture_us = capture_us;
        frame.seq = self.extend_seq(seq);
        Ok(())
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
    fn fourcc_text_is_printable() {
        assert_eq!(fourcc_text(FourCC::new(b"MJPG")), "MJPG");
        assert_eq!(fourcc_text(FourCC::new(&[0, b'A', 0xFF, b' '])), "?A? ");
    }
}
