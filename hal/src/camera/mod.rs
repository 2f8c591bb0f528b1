//! Cameras: the `FrameSource` trait and its sources.
//!
//! A source fills an [`I420Frame`] the caller owns (fixed buffers: nothing is allocated per
//! picture). Device-paced sources (V4L2) block until the device delivers; free-running sources
//! (test pattern, Y4M) return at once and the caller paces them with its frame clock.
//!
//! Modules: [`spec`] parses `--source` and opens a source; [`test_pattern`] (with [`stamp`]
//! and [`digits`]), [`y4m`] and `v4l2` (Linux, `v4l2` feature; its fake camera and fault
//! injector are `v4l2::fake`, `fake` feature) are the sources; [`convert`] turns camera pixel
//! formats into I420, [`mjpeg`] decodes Motion-JPEG frames into I420; `fake` (tests, `fake`
//! feature) is a scripted source.

use crate::frame::I420Frame;

pub mod convert;
pub mod digits;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
pub mod mjpeg;
pub mod orient;
pub mod rpicam;
pub mod slate;
pub mod spec;
pub mod stamp;
pub mod test_pattern;
#[cfg(all(target_os = "linux", feature = "v4l2"))]
pub mod v4l2;
pub mod y4m;

pub use convert::PixelFormat;
#[cfg(any(test, feature = "fake"))]
pub use fake::{ScriptedSource, Step};
pub use orient::{Orientation, Oriented};
pub use rpicam::RpicamSource;
pub use slate::draw_slate;
pub use spec::{SourceRequest, SourceSpec, open_oriented, open_source};
pub use test_pattern::TestPattern;
#[cfg(all(target_os = "linux", feature = "v4l2"))]
pub use v4l2::V4l2Source;
pub use y4m::Y4mSource;

/// Who decides when the next picture exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// The device delivers pictures at its own rate; `capture` blocks until the next one.
    Device,
    /// `capture` returns at once; the caller must pace the calls (start + n * period).
    Free,
}

/// What a source delivers, after negotiation with the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Short kind name: `test-pattern`, `y4m`, `v4l2`, `rpicam`.
    pub kind: &'static str,
    /// Human-readable description (device path, file, driver card name, native format).
    pub description: String,
    /// Negotiated width in pixels.
    pub width: u32,
    /// Negotiated height in pixels.
    pub height: u32,
    /// Frame rate numerator (frames per `fps_den` seconds).
    pub fps_num: u32,
    /// Frame rate denominator.
    pub fps_den: u32,
}

/// Wall clock for stamping capture times (realtime, microseconds since the UNIX epoch).
pub trait WallClock: Send + Sync {
    /// Microseconds since the UNIX epoch now.
    fn now_us(&self) -> u64;
}

/// The system's realtime clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now_us(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}

/// A fixed clock for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub u64);

impl WallClock for FixedClock {
    fn now_us(&self) -> u64 {
        self.0
    }
}

/// Kinds of camera failure that generic code can act on (embedded-hal style).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The device or file does not exist.
    NotFound,
    /// The device is in use by another process.
    Busy,
    /// No format/size/rate the node can use.
    UnsupportedFormat,
    /// Malformed input (bad Y4M header, short frame, bad spec).
    InvalidInput,
    /// Permission denied.
    PermissionDenied,
    /// One picture from the device could not be decoded (a corrupt or truncated MJPEG frame):
    /// drop it, count it and capture the next; the device itself is fine.
    CorruptFrame,
    /// The device went away or failed mid-stream; reopening may help.
    Disconnected,
    /// Any other I/O error.
    Other,
}

/// A camera error: a kind plus a message that tells the operator what to do.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CameraError {
    kind: ErrorKind,
    message: String,
}

impl CameraError {
    /// A new error of `kind` with an operator-facing `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The kind, for generic handling.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// A source of pictures.
pub trait FrameSource: Send {
    /// What the source delivers (negotiated size and rate).
    fn info(&self) -> SourceInfo;

    /// Whether the device or the caller paces capture.
    fn pacing(&self) -> Pacing;

    /// Fills `frame` (already sized to `info().width` x `info().height`) with the next picture,
    /// sets `frame.capture_us` from `clock` at the moment of capture and `frame.seq`.
    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError>;

    /// Closes the source and reports what failed while closing (a device's stream-off or
    /// buffer release); the device is closed in any case. Dropping a source closes it too,
    /// logging instead of reporting. The default just drops.
    fn close(self: Box<Self>) -> Result<(), CameraError> {
        drop(self);
        Ok(())
    }
}

impl<T: FrameSource + ?Sized> FrameSource for &mut T {
    fn info(&self) -> SourceInfo {
        (**self).info()
    }
    fn pacing(&self) -> Pacing {
        (**self).pacing()
    }
    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        (**self).capture(frame, clock)
    }
}

impl<T: FrameSource + ?Sized> FrameSource for Box<T> {
    fn info(&self) -> SourceInfo {
        (**self).info()
    }
    fn pacing(&self) -> Pacing {
        (**self).pacing()
    }
    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        (**self).capture(frame, clock)
    }
    fn close(self: Box<Self>) -> Result<(), CameraError> {
        (*self).close()
    }
}
