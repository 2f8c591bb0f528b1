//! The per-frame hook after encoding: [`FrameObserver`], and [`FrameStats`] for metrics.
//!
//! Anything that needs to see every encoded frame (frame hashes for attestations, counters for
//! `/metrics`) implements [`FrameObserver`] instead of being wired into the media path. The
//! encode loop calls [`FrameObserver::on_encoded`] once per encoded frame with its metadata and
//! bytes; observers must be quick and must not block, since they run on the encode thread.

/// Metadata of one encoded frame, as handed to observers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedFrameInfo {
    /// Frame number on the pacer's grid.
    pub index: u64,
    /// Capture time, microseconds since the UNIX epoch.
    pub capture_us: u64,
    /// RTP timestamp (90 kHz) of the frame's packets.
    pub rtp_timestamp: u32,
    /// The frame is a keyframe.
    pub keyframe: bool,
    /// Size of the encoded frame in bytes.
    pub bytes: usize,
}

/// Sees every encoded frame, in order.
pub trait FrameObserver: Send {
    /// Called once per encoded frame with its metadata and the encoded bytes.
    fn on_encoded(&mut self, info: &EncodedFrameInfo, data: &[u8]);
}

impl<O: FrameObserver + ?Sized> FrameObserver for &mut O {
    fn on_encoded(&mut self, info: &EncodedFrameInfo, data: &[u8]) {
        (**self).on_encoded(info, data);
    }
}

impl<O: FrameObserver + ?Sized> FrameObserver for Box<O> {
    fn on_encoded(&mut self, info: &EncodedFrameInfo, data: &[u8]) {
        (**self).on_encoded(info, data);
    }
}

/// Counts encoded frames, bytes and keyframes (the encoder's figures in `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Frames encoded.
    pub frames: u64,
    /// Encoded bytes, all frames.
    pub bytes: u64,
    /// Keyframes among them.
    pub keyframes: u64,
    /// The most recent frame, if any.
    pub last: Option<EncodedFrameInfo>,
}

impl FrameStats {
    /// Zeroed counters.
    pub fn new() -> Self {
        Self::default()
    }
}

impl FrameObserver for FrameStats {
    fn on_encoded(&mut self, info: &EncodedFrameInfo, _data: &[u8]) {
        self.frames = self.frames.saturating_add(1);
        self.bytes = self.bytes.saturating_add(info.bytes as u64);
        self.keyframes = self.keyframes.saturating_add(u64::from(info.keyframe));
        self.last = Some(*info);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(index: u64, keyframe: bool, bytes: usize) -> EncodedFrameInfo {
        EncodedFrameInfo {
            index,
            capture_us: 1_700_000_000_000_000 + index * 33_333,
            rtp_timestamp: (index * 3_000) as u32,
            keyframe,
            bytes,
        }
    }

    #[test]
    fn frame_stats_counts_frames_bytes_and_keyframes() {
        let mut stats = FrameStats::new();
        let frames = [
            info(0, true, 9_000),
            info(1, false, 700),
            info(2, false, 650),
        ];
        for f in &frames {
            stats.on_encoded(f, &vec![0; f.bytes]);
        }
        assert_eq!(stats.frames, 3);
        assert_eq!(stats.bytes, 10_350);
        assert_eq!(stats.keyframes, 1);
        assert_eq!(stats.last, Some(frames[2]));
    }

    #[test]
    fn observers_compose_through_references_and_boxes() {
        let mut stats = FrameStats::new();
        {
            let mut by_ref: Box<dyn FrameObserver + '_> = Box::new(&mut stats);
            by_ref.on_encoded(&info(5, true, 10), &[0; 10]);
        }
        assert_eq!((stats.frames, stats.keyframes, stats.bytes), (1, 1, 10));
    }
}
