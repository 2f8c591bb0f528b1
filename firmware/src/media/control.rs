//! [`MediaControl`]: how commands reach the media threads. An operator's `stream stop|start`,
//! `stream keyframe` and `reboot-stream` (control socket, console, button) and the bitrate
//! target that WHIP re-targeting computes from the relays' estimates: atomics the capture and
//! encode threads read once per frame, no locks on the hot path. Counters live in
//! [`crate::stats`], which only reports.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Operator switches read by the media threads.
#[derive(Debug, Default)]
pub struct MediaControl {
    paused: AtomicBool,
    keyframe: AtomicBool,
    restart: AtomicBool,
    /// The encoder's target bitrate in kbit/s (0: the configured one); WHIP re-targeting
    /// writes it, the encode thread applies it between frames.
    target_kbps: AtomicU64,
    /// A still picture asked for (`/snapshot.jpg`, `sutantra snapshot`): the encode thread
    /// copies its next frame here.
    pub snapshot: super::snapshot::SnapshotSlot,
}

impl MediaControl {
    /// `stream stop` (true) or `stream start` (false). Starting again asks for a keyframe so
    /// every viewer gets a clean picture at once.
    pub fn set_paused(&self, paused: bool) {
        self.paused.store(paused, Ordering::SeqCst);
        if !paused {
            self.request_keyframe();
        }
    }

    /// Frames are not being sent on purpose.
    pub fn paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// Asks the encoder for a keyframe (rate-limited like a viewer's PLI).
    pub fn request_keyframe(&self) {
        self.keyframe.store(true, Ordering::SeqCst);
    }

    /// Takes a pending keyframe request (the encode thread).
    pub fn take_keyframe(&self) -> bool {
        self.keyframe.swap(false, Ordering::SeqCst)
    }

    /// Asks the capture thread to close and reopen the source.
    pub fn request_restart(&self) {
        self.restart.store(true, Ordering::SeqCst);
    }

    /// Takes a pending restart request (the capture thread).
    pub fn take_restart(&self) -> bool {
        self.restart.swap(false, Ordering::SeqCst)
    }

    /// Sets the encoder's target bitrate (kbit/s); 0 leaves the configured one.
    pub fn set_target_bitrate(&self, kbps: u64) {
        self.target_kbps.store(kbps, Ordering::Relaxed);
    }

    /// The encoder's target bitrate (kbit/s); 0 when nothing has set one.
    pub fn target_bitrate(&self) -> u64 {
        self.target_kbps.load(Ordering::Relaxed)
    }

    /// Applies the target bitrate to the encoder if it changed (called by the encode thread
    /// between frames; `applied` is the bitrate in force).
    pub fn apply_target_bitrate(
        &self,
        encoder: &mut sutantra_core::codec::vp8::Vp8Encoder,
        applied: &mut u32,
    ) {
        let want = u32::try_from(self.target_bitrate()).unwrap_or(u32::MAX);
        if want == 0 || want == *applied {
            return;
        }
        if let Err(e) = encoder.set_bitrate(want) {
            tracing::warn!(kbps = want, error = %e, "the encoder refused the new bitrate");
        }
        // Also on error: try again only when the target moves.
        *applied = want;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starting_again_asks_for_a_keyframe() {
        let c = MediaControl::default();
        c.set_paused(true);
        assert!(c.paused());
        assert!(!c.take_keyframe());
        c.set_paused(false);
        assert!(!c.paused());
        assert!(c.take_keyframe());
        assert!(!c.take_keyframe());
    }
}
