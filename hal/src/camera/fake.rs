//! `ScriptedSource`: a fake camera that plays a script of frames and failures.
//!
//! Tests of the capture loop (here and in other crates, through the `fake` feature) need a
//! source that fails exactly when they say: a busy device on the third frame, a disconnect,
//! then recovery. Like embedded-hal-mock, the script is an expectation: each `capture` consumes
//! one step, capturing past the end is an error (the test is wrong), and dropping the source
//! with steps left panics, so a test cannot pass while its script was never played out.

use std::collections::VecDeque;

use super::{CameraError, ErrorKind, FrameSource, Pacing, SourceInfo, WallClock};
use crate::frame::I420Frame;

/// One step of a [`ScriptedSource`] script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Deliver a frame whose luma is all `luma` (chroma neutral).
    Frame {
        /// The luma value of every pixel.
        luma: u8,
    },
    /// Fail with an error of this kind.
    Fail(ErrorKind),
}

/// A fake source that plays a fixed script of [`Step`]s and checks it was played out.
#[derive(Debug)]
pub struct ScriptedSource {
    steps: VecDeque<Step>,
    info: SourceInfo,
    pacing: Pacing,
    seq: u64,
}

impl ScriptedSource {
    /// A `width` x `height` source at 30 fps with `pacing`, playing `steps` in order.
    pub fn new(
        width: u32,
        height: u32,
        pacing: Pacing,
        steps: impl IntoIterator<Item = Step>,
    ) -> Self {
        Self {
            steps: steps.into_iter().collect(),
            info: SourceInfo {
                kind: "scripted",
                description: format!("scripted fake source {width}x{height}"),
                width,
                height,
                fps_num: 30,
                fps_den: 1,
            },
            pacing,
            seq: 0,
        }
    }

    /// Steps not played yet.
    pub fn remaining(&self) -> usize {
        self.steps.len()
    }

    /// Asserts the whole script was played, and disarms the check on drop.
    ///
    /// # Panics
    /// If steps are left.
    pub fn done(mut self) {
        let left = std::mem::take(&mut self.steps);
        assert!(
            left.is_empty(),
            "ScriptedSource: {} step(s) never played: {left:?}",
            left.len()
        );
    }
}

impl FrameSource for ScriptedSource {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn pacing(&self) -> Pacing {
        self.pacing
    }

    fn capture(&mut self, frame: &mut I420Frame, clock: &dyn WallClock) -> Result<(), CameraError> {
        if frame.width() != self.info.width || frame.height() != self.info.height {
            return Err(CameraError::new(
                ErrorKind::InvalidInput,
                format!(
                    "frame is {}x{} but the scripted source is {}x{}",
                    frame.width(),
                    frame.height(),
                    self.info.width,
                    self.info.height
                ),
            ));
        }
        match self.steps.pop_front() {
            Some(Step::Frame { luma }) => {
                let (y, u, v) = frame.planes_mut();
                y.fill(luma);
                u.fill(128);
                v.fill(128);
                frame.capture_us = clock.now_us();
                frame.seq = self.seq;
                self.seq += 1;
                Ok(())
            }
            Some(Step::Fail(kind)) => Err(CameraError::new(
                kind,
                format!("scripted failure ({kind:?})"),
            )),
            None => Err(CameraError::new(
                ErrorKind::Other,
                "ScriptedSource: capture called after the script ended (the test's script is \
                 too short)",
            )),
        }
    }
}

impl Drop for ScriptedSource {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.steps.is_empty(),
                "ScriptedSource dropped with {} step(s) never played: {:?}",
                self.steps.len(),
                self.steps
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::FixedClock;

    #[test]
    fn plays_the_script() {
        let mut src = ScriptedSource::new(
            4,
            2,
            Pacing::Device,
            [
                Step::Frame { luma: 50 },
                Step::Fail(ErrorKind::Busy),
                Step::Frame { luma: 60 },
            ],
        );
        assert_eq!(src.pacing(), Pacing::Device);
        assert_eq!(src.info().width, 4);
        let mut f = I420Frame::new(4, 2);
        src.capture(&mut f, &FixedClock(10)).expect("frame");
        assert_eq!((f.data()[0], f.seq, f.capture_us), (50, 0, 10));
        let err = src.capture(&mut f, &FixedClock(11)).expect_err("fail");
        assert_eq!(err.kind(), ErrorKind::Busy);
        src.capture(&mut f, &FixedClock(12)).expect("frame");
        assert_eq!((f.data()[0], f.seq, f.capture_us), (60, 1, 12));
        assert_eq!(src.remaining(), 0);
        let err = src.capture(&mut f, &FixedClock(13)).expect_err("exhausted");
        assert_eq!(err.kind(), ErrorKind::Other);
        src.done();
    }

    #[test]
    #[should_panic(expected = "never played")]
    fn unplayed_steps_panic_on_drop() {
        let _src = ScriptedSource::new(4, 2, Pacing::Free, [Step::Frame { luma: 1 }]);
    }

    #[test]
    #[should_panic(expected = "never played")]
    fn done_checks_too() {
        ScriptedSource::new(4, 2, Pacing::Free, [Step::Fail(ErrorKind::Other)]).done();
    }
}
