//! Hardware abstraction layer of the Sutantra edge node.
//!
//! Layout:
//! - [`frame`]: the I420 picture buffer every source fills (defined in `sutantra_core::frame`,
//!   re-exported here so `sutantra_hal::frame::I420Frame` keeps working);
//! - [`camera`]: the [`camera::FrameSource`] trait and its sources (test pattern with the latency
//!   stamp, Y4M files, V4L2 devices behind the `v4l2` feature), plus a scripted fake;
//! - [`gpio`]: the [`gpio::StatusLed`] and [`gpio::Button`] traits, Raspberry Pi pins behind the
//!   `rpi` feature, and fakes that record LED transitions and script button presses.
//!
//! Nothing here allocates per picture: sources write into frames the caller owns.
//!
//! Features: `v4l2` (default, Linux only) enables `camera::V4l2Source` and `v4l2:` specs;
//! `rpi` (Linux only) enables `gpio::rpi` (BCM pins through `rppal`); `fake` exports the
//! scripted fakes (camera source, LED, button) for tests of other crates.

#![warn(missing_docs)]

pub mod camera;
pub mod gpio;

/// The frame type lives in the driver-free core; re-exported for the sources and their users.
pub use sutantra_core::frame;

#[cfg(all(target_os = "linux", feature = "v4l2"))]
pub use camera::V4l2Source;
pub use camera::stamp::{read_stamp, write_stamp};
pub use camera::{
    CameraError, ErrorKind, FixedClock, FrameSource, Pacing, SourceInfo, SystemClock, WallClock,
};
#[cfg(any(test, feature = "fake"))]
pub use camera::{ScriptedSource, Step};
pub use camera::{SourceRequest, SourceSpec, TestPattern, Y4mSource, open_source};
pub use frame::I420Frame;
