//! Board profiles of the Sutantra edge node: per board, the defaults a camera board starts with.
//!
//! Today this holds the one profile the broadcast node needs (a generic board running the embedded
//! default); the per-board table (Pi Zero 2 W, 3B, 4B, 5, ...) comes with the boards issue.

/// Defaults a board starts with; configuration overrides every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardProfile {
    /// Short name used with `--board`.
    pub name: &'static str,
    /// Human-readable description.
    pub description: &'static str,
    /// Default capture width.
    pub width: u32,
    /// Default capture height.
    pub height: u32,
    /// Default frame rate.
    pub fps: u32,
    /// Default VP8 target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// libvpx `cpu-used` (speed) for this CPU: higher is faster and blurrier.
    pub cpu_used: i32,
}

/// The embedded default: 640x480 at 30 FPS, 1 Mbit/s.
pub const GENERIC: BoardProfile = BoardProfile {
    name: "generic",
    description: "Any Linux board or PC: 640x480 at 30 FPS, 1 Mbit/s",
    width: 640,
    height: 480,
    fps: 30,
    bitrate_kbps: 1000,
    cpu_used: 8,
};

/// Every known profile.
pub const ALL: &[BoardProfile] = &[GENERIC];

/// Finds a profile by name.
pub fn find(name: &str) -> Option<&'static BoardProfile> {
    ALL.iter().find(|b| b.name == name)
}
