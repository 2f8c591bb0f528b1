//! Check: the camera stack this board has: Raspberry Pi OS's camera tools (`rpicam-vid`, for
//! CSI camera modules) and the cameras they find, and the V4L2 capture nodes (USB webcams).

use super::Outcome;
use crate::config::Config;
use std::time::Duration;
use sutantra_hal::ErrorKind;
use sutantra_hal::camera::SourceSpec;
use sutantra_hal::camera::rpicam::{self, CameraList};

/// How long `rpicam-vid --list-cameras` may take (libcamera starts in about a second).
const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// Lists the CSI cameras (through `rpicam-vid --list-cameras`) and `/dev/video*` nodes.
pub fn check(cfg: &Config) -> Outcome {
    let wants_rpicam = matches!(cfg.source_spec(), SourceSpec::Rpicam(_));
    let listed = match rpicam::list_cameras(LIST_TIMEOUT) {
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        other => Some(other),
    };
    verdict(wants_rpicam, &cfg.source.spec, listed, &video_nodes())
}

/// The `/dev/video*` nodes, sorted.
fn video_nodes() -> Vec<String> {
    let mut nodes: Vec<String> = std::fs::read_dir("/dev")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("video"))
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes
}

/// The verdict from what was found (`listed`: `None` when no tool is installed).
fn verdict(
    wants_rpicam: bool,
    spec: &str,
    listed: Option<Result<CameraList, sutantra_hal::CameraError>>,
    nodes: &[String],
) -> Outcome {
    let v4l2 = if nodes.is_empty() {
        "no /dev/video* nodes".to_string()
    } else {
        format!("V4L2 nodes: {}", nodes.join(", "))
    };
    match listed {
        None if wants_rpicam => Outcome::fail(
            "camera-stack",
            format!("[source] spec = {spec} but rpicam-vid is not installed; {v4l2}"),
            "sudo apt install rpicam-apps (images before Bookworm: libcamera-apps)",
        ),
        None => Outcome::ok(
            "camera-stack",
            format!("V4L2 only (no rpicam-vid: CSI camera modules need it); {v4l2}"),
        ),
        Some(Err(e)) => Outcome::warn(
            "camera-stack",
            format!("libcamera through rpicam-vid: {e}; {v4l2}"),
            "run `rpicam-vid --list-cameras` and check the camera cable and /boot/firmware/config.txt",
        ),
        Some(Ok(list)) if list.cameras.is_empty() && wants_rpicam => Outcome::fail(
            "camera-stack",
            format!(
                "libcamera ({}) finds no camera module; {v4l2}",
                list.tool.display()
            ),
            "check the ribbon cable (contacts facing the right way, board off when plugging) and \
             camera_auto_detect=1 in /boot/firmware/config.txt",
        ),
        Some(Ok(list)) if list.cameras.is_empty() => Outcome::ok(
            "camera-stack",
            format!(
                "libcamera ({}): no camera module; {v4l2}",
                list.tool.display()
            ),
        ),
        Some(Ok(list)) => Outcome::ok(
            "camera-stack",
            format!(
                "libcamera ({}): {} camera module(s): {}{}; {v4l2}",
                list.tool.display(),
                list.cameras.len(),
                list.cameras.join("; "),
                if wants_rpicam {
                    String::new()
                } else {
                    format!(" (use --source rpicam, [source] spec is {spec})")
                }
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::check::Verdict;

    fn list(cams: &[&str]) -> Option<Result<CameraList, sutantra_hal::CameraError>> {
        Some(Ok(CameraList {
            tool: "/usr/bin/rpicam-vid".into(),
            cameras: cams.iter().map(|s| s.to_string()).collect(),
        }))
    }

    #[test]
    fn reports_the_stack_and_the_cameras_and_fails_only_what_the_source_needs() {
        let nodes = vec!["/dev/video0".to_string()];
        let o = verdict(false, "v4l2:/dev/video0", None, &nodes);
        assert_eq!(o.verdict, Verdict::Ok);
        assert!(o.detail.contains("/dev/video0"), "{}", o.detail);
        let o = verdict(true, "rpicam", None, &nodes);
        assert_eq!(o.verdict, Verdict::Fail);
        let fix = o.fix.unwrap_or_default();
        assert!(fix.contains("apt install rpicam-apps"), "{fix}");
        let o = verdict(true, "rpicam", list(&["0 : imx708 [4608x2592]"]), &[]);
        assert_eq!(o.verdict, Verdict::Ok);
        assert!(
            o.detail.contains("1 camera module(s): 0 : imx708"),
            "{}",
            o.detail
        );
        let o = verdict(true, "rpicam", list(&[]), &[]);
        assert_eq!(o.verdict, Verdict::Fail);
        let o = verdict(false, "test-pattern", list(&["0 : imx219"]), &[]);
        assert!(o.detail.contains("use --source rpicam"), "{}", o.detail);
    }
}
