//! Check: the configured camera opens, negotiates the configured size, and delivers a frame.

use super::{NET_TIMEOUT, Outcome, with_timeout};
use crate::config::Config;
use sutantra_hal::camera::{SourceRequest, open_oriented};
use sutantra_hal::{I420Frame, SystemClock};

/// Opens the source briefly and captures one frame.
pub fn check(cfg: &Config) -> Outcome {
    if let Some(url) = cfg.source.upstream_url() {
        return Outcome::ok(
            "camera",
            format!("none needed: the node relays {url} (its status shows the upstream)"),
        );
    }
    let spec = cfg.source_spec();
    let req = SourceRequest {
        width: cfg.source.width,
        height: cfg.source.height,
        fps_num: cfg.source.fps,
        fps_den: 1,
        buffers: cfg.source.buffers,
    };
    let o = cfg.source.orientation();
    let name = spec.to_string();
    let got = with_timeout(NET_TIMEOUT, move || {
        let mut src = open_oriented(&spec, &req, o).map_err(|e| e.to_string())?;
        let info = src.info();
        let mut frame = I420Frame::new(info.width, info.height);
        src.capture(&mut frame, &SystemClock)
            .map_err(|e| format!("opened, but capture failed: {e}"))?;
        Ok::<_, String>(info)
    });
    match got {
        None => Outcome::fail(
            "camera",
            format!("{name}: no frame within {}s", NET_TIMEOUT.as_secs()),
            "check the camera cable and `v4l2-ctl --list-devices`; another process may hold it",
        ),
        Some(Err(e)) => Outcome::fail(
            "camera",
            format!("{name}: {e}"),
            "check the camera (`v4l2-ctl --list-devices`, `--list-formats-ext`) or set \
             [source] spec",
        ),
        Some(Ok(info)) if info.width != cfg.source.width || info.height != cfg.source.height => {
            Outcome::warn(
                "camera",
                format!(
                    "{name}: asked for {}x{}, the camera gives {}x{} ({})",
                    cfg.source.width, cfg.source.height, info.width, info.height, info.description
                ),
                "set [source] width/height to a size the camera supports",
            )
        }
        Some(Ok(info)) => Outcome::ok(
            "camera",
            format!(
                "{name}: {}x{} at {}/{} fps ({})",
                info.width, info.height, info.fps_num, info.fps_den, info.description
            ),
        ),
    }
}
