//! Check: the VP8 encoder keeps up at the configured size: encode 30 test-pattern frames with
//! the configured settings and compare the time per frame with the frame period.

use super::Outcome;
use crate::config::Config;
use std::time::{Duration, Instant};
use sutantra_core::codec::vp8::{Vp8Config, Vp8Encoder};
use sutantra_hal::camera::{SourceRequest, SourceSpec, open_source};
use sutantra_hal::{I420Frame, SystemClock};

const FRAMES: u32 = 30;

/// Times the encoder.
pub fn check(cfg: &Config) -> Outcome {
    let (w, h, fps) = (cfg.source.width, cfg.source.height, cfg.source.fps.max(1));
    let req = SourceRequest {
        width: w,
        height: h,
        fps_num: fps,
        fps_den: 1,
        buffers: 2,
    };
    let mut pattern = match open_source(&SourceSpec::TestPattern, &req) {
        Ok(s) => s,
        Err(e) => return Outcome::fail("encoder", format!("test pattern: {e}"), "report a bug"),
    };
    let mut encoder = match Vp8Encoder::with_tuning(
        &Vp8Config {
            width: w,
            height: h,
            fps_num: fps,
            fps_den: 1,
            bitrate_kbps: cfg.encoder.bitrate_kbps,
            keyframe_interval: cfg.encoder.keyframe_interval,
            cpu_used: cfg.encoder.cpu_used,
            threads: cfg.encoder.threads,
        },
        &cfg.encoder.tuning(),
    ) {
        Ok(e) => e,
        Err(e) => {
            return Outcome::fail(
                "encoder",
                format!("libvpx refused {w}x{h}: {e}"),
                "check [encoder] and [source] settings",
            );
        }
    };
    let mut frame = I420Frame::new(w, h);
    let mut spent = Duration::ZERO;
    for i in 0..FRAMES {
        if let Err(e) = pattern.capture(&mut frame, &SystemClock) {
            return Outcome::fail("encoder", format!("test pattern: {e}"), "report a bug");
        }
        let t = Instant::now();
        if let Err(e) = encoder.encode(&frame, i == 0) {
            return Outcome::fail(
                "encoder",
                format!("encode failed: {e}"),
                "check [encoder] settings",
            );
        }
        spent += t.elapsed();
    }
    let per_frame = spent.as_secs_f64() * 1000.0 / f64::from(FRAMES);
    let period = 1000.0 / f64::from(fps);
    let detail = format!(
        "{w}x{h}: {per_frame:.1} ms per frame, the frame period is {period:.1} ms \
         (cpu_used {}, {} thread(s))",
        cfg.encoder.cpu_used, cfg.encoder.threads
    );
    let fix = "lower [source] width/height or fps, or raise [encoder] cpu_used";
    if per_frame > period * 0.9 {
        Outcome::fail("encoder", detail, fix)
    } else if per_frame > period * 0.6 {
        Outcome::warn("encoder", format!("{detail}: little headroom"), fix)
    } else {
        Outcome::ok("encoder", detail)
    }
}
