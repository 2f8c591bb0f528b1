//! `[source]`: the camera: spec, size, rate, buffers, frame pool.

use serde::Deserialize;

/// `[source]`: the camera.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `test-pattern`, `y4m:PATH`, `v4l2:/dev/videoN`, `rpicam` or `rpicam:N`.
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
    /// Mirror the picture left to right (a camera mounted facing a mirror, or a rear camera).
    pub hflip: bool,
    /// Mirror the picture top to bottom.
    pub vflip: bool,
    /// 0 or 180 degrees (a camera mounted upside down); 180 is `hflip` and `vflip` together.
    /// Done by the camera where it can (rpicam: the ISP), otherwise on each frame.
    pub rotation: u32,
}

impl SourceConfig {
    /// The flips `hflip`, `vflip` and `rotation` add up to (`rotation` checked by `validate`).
    pub fn orientation(&self) -> sutantra_hal::camera::Orientation {
        sutantra_hal::camera::Orientation::new(self.hflip, self.vflip, self.rotation)
            .unwrap_or_default()
    }
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
            hflip: false,
            vflip: false,
            rotation: 0,
        }
    }
}
