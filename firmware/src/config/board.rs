//! Board profiles at run time: choosing one (`--board`, `board = ...` in the file, or the
//! detected Raspberry Pi model) and applying its defaults under the configuration file.
//!
//! Precedence, lowest first: the profile, then every key the file sets, then command-line flags.
//! A profile only fills keys the file leaves out, so an operator's file always wins.

use crate::config::{Config, ConfigError};
use sutantra_boards::BoardProfile;

/// Where the device tree names the board.
const MODEL_FILE: &str = "/proc/device-tree/model";

/// How the profile was chosen (for logs and `sutantra boards`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chosen {
    /// `--board NAME`.
    Flag,
    /// `board = "NAME"` in the configuration file.
    File,
    /// Detected from the device tree.
    Detected,
    /// Nothing chose one: the generic profile.
    Default,
}

/// The board this machine is, from `/proc/device-tree/model`.
pub fn detect() -> Option<&'static BoardProfile> {
    let model = std::fs::read(MODEL_FILE).ok()?;
    sutantra_boards::detect(&String::from_utf8_lossy(&model))
}

/// Picks the profile: flag, then file, then detection, then generic.
pub fn choose(
    flag: Option<&str>,
    file: Option<&str>,
) -> Result<(&'static BoardProfile, Chosen), String> {
    let named = |name: &str| {
        sutantra_boards::find(name).ok_or_else(|| {
            format!(
                "unknown board `{name}`: use one of {} (sutantra boards)",
                sutantra_boards::names().join(", ")
            )
        })
    };
    if let Some(name) = flag {
        return Ok((named(name)?, Chosen::Flag));
    }
    if let Some(name) = file {
        return Ok((named(name)?, Chosen::File));
    }
    if let Some(b) = detect() {
        return Ok((b, Chosen::Detected));
    }
    Ok((&sutantra_boards::GENERIC, Chosen::Default))
}

/// How long the CSI camera probe may take (libcamera enumerates in about a second).
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether a camera module sits on the CSI connector: `rpicam-vid --list-cameras` lists one.
pub fn csi_camera_present() -> bool {
    sutantra_hal::camera::rpicam::list_cameras(PROBE_TIMEOUT).is_ok_and(|l| !l.cameras.is_empty())
}

/// Fills every profile default the file did not set. `file_table` is the parsed file (None: no
/// file, so every default comes from the profile). On a Raspberry Pi profile with no
/// `[source] spec` in the file, the camera is `rpicam` when a CSI camera module is present
/// ([`csi_camera_present`]), else the profile's V4L2 device.
pub fn apply(cfg: &mut Config, board: &BoardProfile, file_table: Option<&toml::Table>) {
    apply_probing(cfg, board, file_table, csi_camera_present);
}

/// [`apply`] with the CSI probe given (tests).
pub fn apply_probing(
    cfg: &mut Config,
    board: &BoardProfile,
    file_table: Option<&toml::Table>,
    csi_camera: impl FnOnce() -> bool,
) {
    let set = |section: &str, key: &str| {
        file_table
            .and_then(|t| t.get(section))
            .and_then(|s| s.as_table())
            .is_some_and(|s| s.contains_key(key))
    };
    if !set("source", "spec") {
        let pi = !board.model_match.is_empty();
        cfg.source.spec = if pi && csi_camera() {
            "rpicam".to_string()
        } else {
            board.camera.to_string()
        };
    }
    if !set("source", "width") {
        cfg.source.width = board.width;
    }
    if !set("source", "height") {
        cfg.source.height = board.height;
    }
    if !set("source", "fps") {
        cfg.source.fps = board.fps;
    }
    if !set("encoder", "bitrate_kbps") {
        cfg.encoder.bitrate_kbps = board.bitrate_kbps;
    }
    if !set("encoder", "cpu_used") {
        cfg.encoder.cpu_used = board.cpu_used;
    }
    if !set("encoder", "threads") {
        cfg.encoder.threads = board.encoder_threads;
    }
    if !set("webrtc", "max_viewers") {
        cfg.webrtc.max_viewers = board.max_viewers;
    }
}

/// A config error for a bad board name.
pub fn error(file: Option<&std::path::Path>, reason: String) -> ConfigError {
    ConfigError {
        file: file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "<command line>".into()),
        line: 0,
        key: "board".into(),
        reason,
    }
}

/// `sutantra boards [--json]`.
pub fn list(json: bool) -> std::process::ExitCode {
    let detected = detect().map(|b| b.name);
    if json {
        let boards: Vec<serde_json::Value> = sutantra_boards::ALL
            .iter()
            .map(|b| {
                serde_json::json!({
                    "name": b.name,
                    "description": b.description,
                    "target": b.target,
                    "camera": b.camera,
                    "formats": b.formats,
                    "width": b.width,
                    "height": b.height,
                    "fps": b.fps,
                    "bitrate_kbps": b.bitrate_kbps,
                    "cpu_used": b.cpu_used,
                    "encoder_threads": b.encoder_threads,
                    "max_viewers": b.max_viewers,
                    "led_pin": b.led_pin,
                    "button_pin": b.button_pin,
                    "memory_budget_mib": b.memory_budget_mib,
                    "detected": detected == Some(b.name),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(boards));
    } else {
        println!(
            "{:<16} {:<26} {:>9} {:>4} {:>6} {:>4}  DESCRIPTION",
            "NAME", "TARGET", "SIZE", "FPS", "KBPS", "CPU"
        );
        for b in sutantra_boards::ALL {
            println!(
                "{:<16} {:<26} {:>9} {:>4} {:>6} {:>4}  {}{}",
                b.name,
                b.target,
                format!("{}x{}", b.width, b.height),
                b.fps,
                b.bitrate_kbps,
                b.cpu_used,
                b.description,
                if detected == Some(b.name) {
                    "  (this board)"
                } else {
                    ""
                }
            );
        }
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_win_over_the_profile() {
        let text = "[source]\nwidth = 320\nheight = 240\n";
        let table: toml::Table = text.parse().expect("toml");
        let mut cfg = Config::parse(text, "t.toml").expect("valid");
        apply_probing(&mut cfg, &sutantra_boards::PI_4B, Some(&table), || false);
        assert_eq!((cfg.source.width, cfg.source.height), (320, 240));
        assert_eq!(
            cfg.encoder.bitrate_kbps, 2500,
            "unset keys come from the profile"
        );
        assert_eq!(cfg.source.spec, "v4l2:/dev/video0");
    }

    #[test]
    fn a_pi_with_a_csi_camera_module_uses_rpicam_unless_the_file_names_a_source() {
        let mut cfg = Config::default();
        apply_probing(&mut cfg, &sutantra_boards::PI_ZERO_2W, None, || true);
        assert_eq!(cfg.source.spec, "rpicam");
        let mut cfg = Config::default();
        apply_probing(&mut cfg, &sutantra_boards::PI_ZERO_2W, None, || false);
        assert_eq!(cfg.source.spec, "v4l2:/dev/video0");
        let text = "[source]\nspec = \"v4l2:/dev/video2\"\n";
        let table: toml::Table = text.parse().expect("toml");
        let mut cfg = Config::parse(text, "t.toml").expect("valid");
        apply_probing(&mut cfg, &sutantra_boards::PI_5, Some(&table), || {
            panic!("no probe when the file names the source")
        });
        assert_eq!(cfg.source.spec, "v4l2:/dev/video2");
        // The generic profile is not a Pi: no probe.
        let mut cfg = Config::default();
        apply_probing(&mut cfg, &sutantra_boards::GENERIC, None, || {
            panic!("probed")
        });
        assert_eq!(cfg.source.spec, sutantra_boards::GENERIC.camera);
    }

    #[test]
    fn unknown_board_names_the_choices() {
        let e = choose(Some("pi-9"), None).expect_err("unknown");
        assert!(e.contains("pi-zero-2w"), "{e}");
        assert_eq!(
            choose(Some("pi-5"), Some("pi-3b")).expect("ok").1,
            Chosen::Flag
        );
        assert_eq!(choose(None, Some("pi-3b")).expect("ok").0.name, "pi-3b");
    }
}
