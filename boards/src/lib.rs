//! Board profiles of the Sutantra edge node: per board, the defaults a camera board starts with.
//!
//! A profile is data: the Rust target to build for, the camera device and the pixel formats to
//! prefer, the resolution, rate, bitrate and encoder speed chosen for that CPU, the GPIO pins of
//! the status LED and the button, and the memory budget the node must stay within. The node picks
//! a profile from configuration or `--board`, or detects a Raspberry Pi from
//! `/proc/device-tree/model`; every value is a default that configuration overrides.
//!
//! Why these numbers: libvpx realtime at fixed speed 6 costs about 1.5 ms per 640x480 frame on
//! one core of a 2-core x86 machine (speed 4: 2.4 ms); a Cortex-A53 at 1 GHz (Pi Zero 2 W, Pi
//! 3B) is roughly 6-8x slower per core, so those boards get 640x480 (Zero 2 W: also the highest
//! speed setting) and the Pi 4 (Cortex-A72, about 2x the A53) and Pi 5 (Cortex-A76) get 720p
//! with encoder threads.
//!
//! The Pi profiles use libvpx's *adaptive* speed (`cpu_used` 0..16): there CPU is the limit,
//! and libvpx keeps each frame's encode within a budget of the frame interval, climbing to a
//! faster speed when the SoC throttles. The generic (x86) profile uses a *fixed* speed (-6, as
//! Chrome and aiortc do on desktop CPUs): with headroom the adaptive mode would spend it on
//! quality, at 1.4-1.7x the CPU per frame (BENCHMARKS.md). The Pi values have not been measured on
//! the boards themselves yet.

/// Defaults a board starts with; configuration overrides every field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardProfile {
    /// Short name used with `--board`.
    pub name: &'static str,
    /// Human-readable description.
    pub description: &'static str,
    /// Substring of `/proc/device-tree/model` that identifies the board (empty: never detected).
    pub model_match: &'static str,
    /// Rust target triple to build for.
    pub target: &'static str,
    /// Default camera source spec.
    pub camera: &'static str,
    /// Pixel formats to prefer, best first (V4L2 fourcc names).
    pub formats: &'static [&'static str],
    /// Default capture width.
    pub width: u32,
    /// Default capture height.
    pub height: u32,
    /// Default frame rate.
    pub fps: u32,
    /// Default VP8 target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// libvpx `cpu-used` for this CPU (see `Vp8Config::cpu_used` in sutantra-core): -16..=-1 a
    /// fixed speed, 0..=16 a speed libvpx adapts to keep each frame's encode within
    /// `(16 - cpu_used) / 16` of the frame interval; higher is faster and blurrier either way.
    pub cpu_used: i32,
    /// Encoder threads.
    pub encoder_threads: u32,
    /// Most viewers served directly (more should go through a relay).
    pub max_viewers: usize,
    /// BCM GPIO number of the status LED, if the board has one wired.
    pub led_pin: Option<u8>,
    /// BCM GPIO number of the button, if any.
    pub button_pin: Option<u8>,
    /// Resident memory the node may use, in MiB.
    pub memory_budget_mib: u32,
}

const CSI_OR_USB: &str = "v4l2:/dev/video0";
const FORMATS: &[&str] = &["YU12", "NV12", "YUYV"];

/// Raspberry Pi Zero 2 W: 4x Cortex-A53 at 1 GHz, 512 MB.
pub const PI_ZERO_2W: BoardProfile = BoardProfile {
    name: "pi-zero-2w",
    description: "Raspberry Pi Zero 2 W (4x Cortex-A53 1 GHz, 512 MB)",
    model_match: "Raspberry Pi Zero 2 W",
    target: "aarch64-unknown-linux-gnu",
    camera: CSI_OR_USB,
    formats: FORMATS,
    width: 640,
    height: 480,
    fps: 30,
    bitrate_kbps: 800,
    cpu_used: 12,
    encoder_threads: 2,
    max_viewers: 4,
    led_pin: Some(17),
    button_pin: Some(27),
    memory_budget_mib: 64,
};

/// Raspberry Pi 3 Model B / B+: 4x Cortex-A53 at 1.2-1.4 GHz, 1 GB.
pub const PI_3B: BoardProfile = BoardProfile {
    name: "pi-3b",
    description: "Raspberry Pi 3 Model B/B+ (4x Cortex-A53 1.2-1.4 GHz, 1 GB)",
    model_match: "Raspberry Pi 3 Model B",
    target: "aarch64-unknown-linux-gnu",
    camera: CSI_OR_USB,
    formats: FORMATS,
    width: 640,
    height: 480,
    fps: 30,
    bitrate_kbps: 1000,
    cpu_used: 10,
    encoder_threads: 2,
    max_viewers: 6,
    led_pin: Some(17),
    button_pin: Some(27),
    memory_budget_mib: 96,
};

/// Raspberry Pi 4 Model B: 4x Cortex-A72 at 1.5-1.8 GHz, 1-8 GB.
pub const PI_4B: BoardProfile = BoardProfile {
    name: "pi-4b",
    description: "Raspberry Pi 4 Model B (4x Cortex-A72 1.5-1.8 GHz)",
    model_match: "Raspberry Pi 4 Model B",
    target: "aarch64-unknown-linux-gnu",
    camera: CSI_OR_USB,
    formats: FORMATS,
    width: 1280,
    height: 720,
    fps: 30,
    bitrate_kbps: 2500,
    cpu_used: 10,
    encoder_threads: 3,
    max_viewers: 12,
    led_pin: Some(17),
    button_pin: Some(27),
    memory_budget_mib: 128,
};

/// Raspberry Pi 5: 4x Cortex-A76 at 2.4 GHz.
pub const PI_5: BoardProfile = BoardProfile {
    name: "pi-5",
    description: "Raspberry Pi 5 (4x Cortex-A76 2.4 GHz)",
    model_match: "Raspberry Pi 5",
    target: "aarch64-unknown-linux-gnu",
    camera: CSI_OR_USB,
    formats: FORMATS,
    width: 1280,
    height: 720,
    fps: 30,
    bitrate_kbps: 2500,
    cpu_used: 8,
    encoder_threads: 2,
    max_viewers: 16,
    led_pin: Some(17),
    button_pin: Some(27),
    memory_budget_mib: 128,
};

/// Any other 64-bit ARM board with a V4L2 camera.
pub const GENERIC_AARCH64: BoardProfile = BoardProfile {
    name: "generic-aarch64",
    description: "Other aarch64 board with a V4L2 camera (conservative defaults)",
    model_match: "",
    target: "aarch64-unknown-linux-gnu",
    camera: CSI_OR_USB,
    formats: FORMATS,
    width: 640,
    height: 480,
    fps: 30,
    bitrate_kbps: 1000,
    cpu_used: 10,
    encoder_threads: 2,
    max_viewers: 8,
    led_pin: None,
    button_pin: None,
    memory_budget_mib: 96,
};

/// An x86-64 development machine: the embedded default (test pattern, 640x480 at 30 FPS).
pub const GENERIC: BoardProfile = BoardProfile {
    name: "generic",
    description: "x86-64 dev box or any Linux machine: test pattern, 640x480 at 30 FPS, 1 Mbit/s",
    model_match: "",
    target: "x86_64-unknown-linux-gnu",
    camera: "test-pattern",
    formats: FORMATS,
    width: 640,
    height: 480,
    fps: 30,
    bitrate_kbps: 1000,
    cpu_used: -6,
    encoder_threads: 1,
    max_viewers: 16,
    led_pin: None,
    button_pin: None,
    memory_budget_mib: 128,
};

/// Every known profile.
pub const ALL: &[BoardProfile] = &[PI_ZERO_2W, PI_3B, PI_4B, PI_5, GENERIC_AARCH64, GENERIC];

/// Finds a profile by name.
pub fn find(name: &str) -> Option<&'static BoardProfile> {
    ALL.iter().find(|b| b.name == name)
}

/// The profile whose `model_match` occurs in a `/proc/device-tree/model` text, if any.
pub fn detect(model: &str) -> Option<&'static BoardProfile> {
    // The file ends in a NUL byte; compare on the text before it.
    let model = model.trim_end_matches('\0').trim();
    ALL.iter()
        .filter(|b| !b.model_match.is_empty())
        .find(|b| model.contains(b.model_match))
}

/// Names of all profiles, for error messages.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|b| b.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_findable() {
        for b in ALL {
            assert_eq!(find(b.name), Some(b));
            assert_eq!(ALL.iter().filter(|o| o.name == b.name).count(), 1);
        }
        assert_eq!(find("pi-9"), None);
    }

    #[test]
    fn detects_pi_models_from_device_tree_text() {
        let cases = [
            ("Raspberry Pi Zero 2 W Rev 1.0\0", "pi-zero-2w"),
            ("Raspberry Pi 3 Model B Rev 1.2\0", "pi-3b"),
            ("Raspberry Pi 3 Model B Plus Rev 1.3\0", "pi-3b"),
            ("Raspberry Pi 4 Model B Rev 1.4\0", "pi-4b"),
            ("Raspberry Pi 5 Model B Rev 1.0\0", "pi-5"),
        ];
        for (model, name) in cases {
            assert_eq!(detect(model).map(|b| b.name), Some(name), "{model}");
        }
        assert_eq!(detect("QEMU Virtual Machine"), None);
    }

    #[test]
    fn defaults_are_encodable() {
        for b in ALL {
            assert!(b.width % 2 == 0 && b.height % 2 == 0, "{}", b.name);
            assert!((1..=120).contains(&b.fps), "{}", b.name);
            assert!((50..=20_000).contains(&b.bitrate_kbps), "{}", b.name);
            assert!((-16..=16).contains(&b.cpu_used), "{}", b.name);
        }
    }
}
