//! Choosing a source: the `--source SPEC` text, the requested format, and [`open_source`].
//!
//! The source spec contract in ARCHITECTURE.md fixes the spec syntax (`test-pattern`,
//! `v4l2:/dev/videoN`, `y4m:PATH`), which the CLI, the config file and `/healthz` all show, so
//! parsing and printing it live in one place. [`open_source`] is the one function the rest of the
//! node calls to get a [`FrameSource`], whatever the build supports.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::orient::{Orientation, Oriented};
use super::rpicam::RpicamSource;
use super::test_pattern::TestPattern;
use super::y4m::Y4mSource;
use super::{CameraError, ErrorKind, FrameSource};

/// The accepted forms, for error messages.
const FORMS: &str = "`test-pattern`, `v4l2:/dev/videoN`, `rpicam`, `rpicam:N` or `y4m:PATH`";

/// Which source to open, as written after `--source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `test-pattern`: the synthetic pattern with the latency stamp.
    TestPattern,
    /// `y4m:PATH`: a YUV4MPEG2 file, looped.
    Y4m(PathBuf),
    /// `v4l2:/dev/videoN`: a V4L2 capture device.
    V4l2(PathBuf),
    /// `rpicam` or `rpicam:N`: camera module N (0 when not given) through `rpicam-vid`.
    Rpicam(u32),
}

impl FromStr for SourceSpec {
    type Err = CameraError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let path = |kind: &str, rest: &str, example: &str| {
            if rest.is_empty() {
                Err(CameraError::new(
                    ErrorKind::InvalidInput,
                    format!("source `{s}` has no path after `{kind}:`: write e.g. `{example}`"),
                ))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        if s == "test-pattern" {
            Ok(SourceSpec::TestPattern)
        } else if let Some(rest) = s.strip_prefix("y4m:") {
            path("y4m", rest, "y4m:/srv/clips/clip.y4m").map(SourceSpec::Y4m)
        } else if let Some(rest) = s.strip_prefix("v4l2:") {
            path("v4l2", rest, "v4l2:/dev/video0").map(SourceSpec::V4l2)
        } else if s == "rpicam" {
            Ok(SourceSpec::Rpicam(0))
        } else if let Some(rest) = s.strip_prefix("rpicam:") {
            rest.parse().map(SourceSpec::Rpicam).map_err(|_| {
                CameraError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "source `{s}`: after `rpicam:` comes the camera's number, as                          `rpicam-vid --list-cameras` shows it (e.g. `rpicam:1`)"
                    ),
                )
            })
        } else {
            Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!("unknown source `{s}`: use {FORMS}"),
            ))
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::TestPattern => f.write_str("test-pattern"),
            SourceSpec::Y4m(path) => write!(f, "y4m:{}", path.display()),
            SourceSpec::V4l2(path) => write!(f, "v4l2:{}", path.display()),
            SourceSpec::Rpicam(0) => f.write_str("rpicam"),
            SourceSpec::Rpicam(n) => write!(f, "rpicam:{n}"),
        }
    }
}

/// What the node asks of a source. Devices may adjust size and rate (see
/// [`FrameSource::info`] for what was negotiated); Y4M files use their own size and rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceRequest {
    /// Requested width in pixels.
    pub width: u32,
    /// Requested height in pixels.
    pub height: u32,
    /// Requested frame rate numerator (frames per `fps_den` seconds).
    pub fps_num: u32,
    /// Requested frame rate denominator.
    pub fps_den: u32,
    /// Number of capture buffers a device source allocates, once (the fixed-buffer capture design
    /// in ARCHITECTURE.md).
    pub buffers: u32,
}

impl Default for SourceRequest {
    /// 640x480 at 30 frames per second with 4 camera buffers (the node's defaults).
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps_num: 30,
            fps_den: 1,
            buffers: 4,
        }
    }
}

/// Opens the source `spec` names, asking for `req`.
///
/// A `v4l2:` spec in a build without V4L2 support (not Linux, or the `v4l2` feature off) is an
/// [`ErrorKind::UnsupportedFormat`] error that says so.
pub fn open_source(
    spec: &SourceSpec,
    req: &SourceRequest,
) -> Result<Box<dyn FrameSource>, CameraError> {
    open_oriented(spec, req, Orientation::default())
}

/// [`open_source`] with the picture flipped as `o` says: by the camera where it can (the ISP
/// through `rpicam-vid`; the test pattern flips itself and stamps after), otherwise on each
/// frame ([`Oriented`]).
pub fn open_oriented(
    spec: &SourceSpec,
    req: &SourceRequest,
    o: Orientation,
) -> Result<Box<dyn FrameSource>, CameraError> {
    let soft = |s: Box<dyn FrameSource>| -> Box<dyn FrameSource> {
        if o.is_identity() {
            s
        } else {
            Box::new(Oriented::new(s, o))
        }
    };
    match spec {
        SourceSpec::TestPattern => Ok(Box::new(
            TestPattern::new(req.width, req.height, req.fps_num, req.fps_den)?.with_orientation(o),
        )),
        SourceSpec::Y4m(path) => Ok(soft(Box::new(Y4mSource::open(path)?))),
        SourceSpec::V4l2(path) => open_v4l2(path, req, o, soft),
        SourceSpec::Rpicam(n) => Ok(Box::new(RpicamSource::open(*n, req, o)?)),
    }
}

/// A V4L2 camera, flipped by its own controls when it has them, else by `soft` (the node).
#[cfg(all(target_os = "linux", feature = "v4l2"))]
fn open_v4l2(
    path: &std::path::Path,
    req: &SourceRequest,
    o: Orientation,
    soft: impl FnOnce(Box<dyn FrameSource>) -> Box<dyn FrameSource>,
) -> Result<Box<dyn FrameSource>, CameraError> {
    let source = super::v4l2::V4l2Source::open_oriented(path, req, o)?;
    if source.flipped() {
        Ok(Box::new(source))
    } else {
        Ok(soft(Box::new(source)))
    }
}

#[cfg(not(all(target_os = "linux", feature = "v4l2")))]
fn open_v4l2(
    path: &std::path::Path,
    _req: &SourceRequest,
    _o: Orientation,
    _soft: impl FnOnce(Box<dyn FrameSource>) -> Box<dyn FrameSource>,
) -> Result<Box<dyn FrameSource>, CameraError> {
    Err(CameraError::new(
        ErrorKind::UnsupportedFormat,
        format!(
            "cannot open v4l2:{}: this build has no V4L2 support (it needs Linux and the `v4l2` \
             feature of sutantra-hal); rebuild with it, or use `test-pattern` or `y4m:PATH`",
            path.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::{FixedClock, Pacing};
    use crate::frame::I420Frame;

    #[test]
    fn parses_and_prints_the_accepted_forms() {
        let cases = [
            ("test-pattern", SourceSpec::TestPattern),
            ("y4m:clip.y4m", SourceSpec::Y4m("clip.y4m".into())),
            ("y4m:/srv/a b.y4m", SourceSpec::Y4m("/srv/a b.y4m".into())),
            ("v4l2:/dev/video0", SourceSpec::V4l2("/dev/video0".into())),
            ("rpicam", SourceSpec::Rpicam(0)),
            ("rpicam:1", SourceSpec::Rpicam(1)),
            (
                "v4l2:/dev/v4l/by-id/usb-cam-video-index0",
                SourceSpec::V4l2("/dev/v4l/by-id/usb-cam-video-index0".into()),
            ),
        ];
        for (text, spec) in cases {
            assert_eq!(text.parse::<SourceSpec>().expect(text), spec);
            assert_eq!(spec.to_string(), text);
        }
    }

    #[test]
    fn rejects_other_forms_saying_what_is_accepted() {
        for text in [
            "",
            "testpattern",
            "Test-Pattern",
            "v4l2",
            "/dev/video0",
            "file:x.y4m",
        ] {
            let err = text.parse::<SourceSpec>().expect_err(text);
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains(FORMS), "{err}");
        }
        for text in ["rpicam:x", "rpicam:", "rpicam:-1"] {
            let err = text.parse::<SourceSpec>().expect_err(text);
            assert!(err.to_string().contains("--list-cameras"), "{err}");
        }
        for text in ["y4m:", "v4l2:"] {
            let err = text.parse::<SourceSpec>().expect_err(text);
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
            assert!(err.to_string().contains("no path"), "{err}");
        }
    }

    #[test]
    fn opens_the_test_pattern() {
        let req = SourceRequest {
            width: 320,
            height: 240,
            ..SourceRequest::default()
        };
        let mut src = open_source(&SourceSpec::TestPattern, &req).expect("open");
        let info = src.info();
        assert_eq!(
            (info.width, info.height, info.fps_num, info.fps_den),
            (320, 240, 30, 1)
        );
        assert_eq!(src.pacing(), Pacing::Free);
        let mut f = I420Frame::new(320, 240);
        src.capture(&mut f, &FixedClock(99)).expect("capture");
        assert_eq!(f.capture_us, 99);

        let bad = SourceRequest {
            width: 0,
            ..SourceRequest::default()
        };
        let err = open_source(&SourceSpec::TestPattern, &bad).map(|_| ());
        assert_eq!(err.map_err(|e| e.kind()), Err(ErrorKind::InvalidInput));
    }

    #[test]
    fn missing_files_and_devices_are_errors() {
        let req = SourceRequest::default();
        let spec = SourceSpec::Y4m("/nonexistent/sutantra/clip.y4m".into());
        let err = open_source(&spec, &req).map(|_| ()).map_err(|e| e.kind());
        assert_eq!(err, Err(ErrorKind::NotFound));

        let spec = SourceSpec::V4l2("/dev/sutantra-no-such-video".into());
        let err = open_source(&spec, &req).map(|_| ()).expect_err("no device");
        if cfg!(all(target_os = "linux", feature = "v4l2")) {
            assert_eq!(err.kind(), ErrorKind::NotFound);
        } else {
            assert_eq!(err.kind(), ErrorKind::UnsupportedFormat);
            assert!(err.to_string().contains("no V4L2 support"));
        }
    }
}
