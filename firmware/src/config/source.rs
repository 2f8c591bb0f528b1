//! `[source]`: the camera: spec, size, rate, buffers, frame pool.

use serde::Deserialize;

/// `[source]`: the camera.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `test-pattern`, `y4m:PATH` or `v4l2:/dev/videoN`.
    pub spec: String,
    /// Capture width in pixels.
    pub width: u32,
    /// Capture height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// Camera (V4L2 mmap) buffers.
    pub buffers: u32,
    /// Frames between capture and encode (drop-oldest when full).
    pub frame_pool: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        let b = &sutantra_boards::GENERIC;
        Self {
            spec: "test-pattern".into(),
            width: b.width,
            height: b.height,
            fps: b.fps,
            buffers: 4,
            frame_pool: 4,
        }
    }
}
