//! Hardware abstraction layer of the Sutantra edge node.
//!
//! Layout:
//! - [`frame`]: the I420 picture buffer every source fills;
//! - [`camera`]: the [`camera::FrameSource`] trait and its sources (test pattern with the latency
//!   stamp, Y4M files, V4L2 devices behind the `v4l2` feature), plus a scripted fake.
//!
//! Nothing here allocates per picture: sources write into frames the caller owns.

pub mod camera;
pub mod frame;

pub use camera::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, SystemClock, WallClock};
pub use frame::I420Frame;
