//! `[source]`: the camera (spec, size, rate, buffers, frame pool), or another WHEP server whose
//! stream the node relays (`whep:URL`, with `upstream_token`).

use serde::Deserialize;

/// `[source]`: the camera.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `test-pattern`, `y4m:PATH`, `v4l2:/dev/videoN`, `rpicam` or `rpicam:N`; or `whep:URL`:
    /// relay another WHEP server's stream (no camera, no encode).
    pub spec: String,
    /// Bearer token for a `whep:` upstream that asks for one.
    pub upstream_token: Option<String>,
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

/// The prefix of a relay source: `whep:http://board:8080/whep`.
pub const WHEP_PREFIX: &str = "whep:";

/// A `whep:` source's upstream URL, checked: http or https with a host. `None` for camera specs.
pub fn whep_upstream(spec: &str) -> Option<Result<String, String>> {
    let url = spec.strip_prefix(WHEP_PREFIX)?;
    let checked = match url.split_once("://") {
        Some(("http" | "https", rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            if host.is_empty() || host.starts_with(':') {
                Err(format!(
                    "`{spec}` has no host: write e.g. `whep:http://board.local:8080/whep`"
                ))
            } else if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(format!("`{spec}` holds a space or a control character"))
            } else {
                Ok(url.to_string())
            }
        }
        _ => Err(format!(
            "`{spec}` is not an http or https URL: write e.g. `whep:http://board.local:8080/whep`"
        )),
    };
    Some(checked)
}

impl SourceConfig {
    /// The upstream WHEP URL when the source is `whep:URL` (checked by `validate`).
    pub fn upstream_url(&self) -> Option<String> {
        whep_upstream(&self.spec).and_then(Result::ok)
    }

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
            upstream_token: None,
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
