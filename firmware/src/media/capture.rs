//! The capture thread: the frame clock, the camera (or the "no signal" slate while it is away,
//! reopened with backoff), and the hand-off of each frame to the pool. A failed camera is
//! closed through `FrameSource::close`, whose errors (a stream-off or buffer release the
//! device refused) are logged: the hal closes the device whatever failed, never panics.

use super::control::MediaControl;
use super::{Opener, PoolShared};
use crate::stats::Stats;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use sutantra_core::pacer::{Decimator, Pacer, Tick};
use sutantra_core::supervisor::Restarter;
use sutantra_hal::camera::{SourceSpec, draw_slate};
use sutantra_hal::{
    CameraError, ErrorKind, FrameSource, I420Frame, Pacing, SystemClock, WallClock,
};

/// What the capture thread shares with the rest of the pipeline.
pub(super) struct CaptureShared {
    pub pool: Arc<PoolShared>,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    pub control: Arc<MediaControl>,
    pub origin: Instant,
}

/// The shortest and longest wait between attempts to reopen a failed camera. The cap bounds
/// recovery: a camera that comes back streams again within about a second (plus its open).
const REOPEN_MIN: Duration = Duration::from_millis(250);
const REOPEN_MAX: Duration = Duration::from_secs(1);

/// The capture thread: paces free-running sources with the frame clock, decimates device
/// sources that run faster than configured, and supervises the camera: a failed camera is
/// closed and reopened with capped backoff ([`REOPEN_MIN`] to [`REOPEN_MAX`]) while the frame
/// clock keeps the stream alive with the "no signal" slate, so viewers stay connected and see
/// that the node is alive.
pub(super) fn capture_loop(
    source: Box<dyn FrameSource>,
    mut open: Opener,
    spec: SourceSpec,
    shared: &CaptureShared,
) {
    let CaptureShared {
        pool,
        stop,
        stats,
        control,
        origin,
    } = shared;
    let origin = *origin;
    let clock = SystemClock;
    let info = source.info();
    let (fps_num, fps_den) = (info.fps_num, info.fps_den);
    let (Ok(mut pacer), Ok(mut decimator)) = (
        Pacer::new(fps_num, fps_den, origin.elapsed()),
        Decimator::new(fps_num, fps_den),
    ) else {
        tracing::error!(fps_num, fps_den, "invalid frame rate; capture stopped");
        return;
    };
    let mut free = source.pacing() == Pacing::Free;
    // `None` while a failed camera is closed and being reopened.
    let mut source = Some(source);
    let mut restarter = Restarter::new(REOPEN_MIN, REOPEN_MAX);
    let mut away_since = origin.elapsed();
    let go_away = |source: &mut Option<Box<dyn FrameSource>>,
                   restarter: &mut Restarter,
                   pacer: &mut Pacer,
                   free: bool| {
        // Close the failed device before reopening: while its file stays open, a camera that
        // comes back is registered as another /dev/videoN. A failed stream-off or buffer
        // release is reported, not fatal: the hal closes the device all the same.
        close_source(source.take(), &spec);
        let now = origin.elapsed();
        if !free {
            // The slate runs on the frame clock, which a camera's own pacing left idle: start
            // it afresh rather than count the camera's time as skipped ticks.
            if let Ok(p) = Pacer::new(fps_num, fps_den, now) {
                *pacer = p;
            }
        }
        restarter.failed(now);
        now
    };
    while !stop.load(Ordering::SeqCst) {
        if control.take_restart() && source.is_some() {
            // `sutantra reboot-stream`: close the source; the reopen path below restarts it.
            tracing::info!(source = %spec, "restarting the source on request");
            stats.set_source_state("restarting");
            away_since = go_away(&mut source, &mut restarter, &mut pacer, free);
            restarter.restart_now(away_since);
        }
        let Some(src) = source.as_mut() else {
            if restarter.due(origin.elapsed()) {
                match open() {
                    Ok(s) if s.info().width == info.width && s.info().height == info.height => {
                        free = s.pacing() == Pacing::Free;
                        decimator.reset();
                        source = Some(s);
                        restarter.succeeded();
                        stats.set_source_state("running");
                        stats.source_reopens.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            source = %spec,
                            away = ?origin.elapsed().saturating_sub(away_since),
                            "source reopened"
                        );
                        continue;
                    }
                    Ok(s) => {
                        let wait = restarter.attempt_failed(origin.elapsed());
                        tracing::error!(
                            source = %spec,
                            size = format!("{}x{}", s.info().width, s.info().height),
                            retry_in = ?wait,
                            "source came back with another size; restart the node to use it"
                        );
                    }
                    Err(e) => {
                        let wait = restarter.attempt_failed(origin.elapsed());
                        // Once a minute at most in the log; every attempt at debug level.
                        if restarter.attempts() % 60 == 1 {
                            tracing::warn!(source = %spec, error = %e, retry_in = ?wait, "source still unavailable; sending the no-signal slate");
                        } else {
                            tracing::debug!(source = %spec, error = %e, "source still unavailable");
                        }
                    }
                }
            }
            // The frame clock goes on: the slate keeps the viewers' picture alive.
            match pacer.poll(origin.elapsed()) {
                Tick::Wait { until } => {
                    let now = origin.elapsed();
                    let until = restarter.next_attempt().map_or(until, |a| a.min(until));
                    if until > now {
                        std::thread::sleep((until - now).min(Duration::from_millis(100)));
                    }
                }
                Tick::Due { skipped, .. } => {
                    if skipped > 0 {
                        stats.pacer_skipped.fetch_add(skipped, Ordering::Relaxed);
                    }
                    let away_s = origin.elapsed().saturating_sub(away_since).as_secs();
                    // Drawing the slate cannot fail.
                    let _ = send_frame(pool, stats, |frame| {
                        draw_slate(frame, clock.now_us(), away_s);
                        Ok(())
                    });
                    stats.slate_frames.fetch_add(1, Ordering::Relaxed);
                }
            }
            continue;
        };
        if free {
            // Free-running source: the frame clock decides when the picture is taken.
            match pacer.poll(origin.elapsed()) {
                Tick::Wait { until } => {
                    let now = origin.elapsed();
                    if until > now {
                        std::thread::sleep((until - now).min(Duration::from_millis(100)));
                    }
                    continue;
                }
                Tick::Due { skipped, late, .. } => {
                    stats.capture_pacing.record_late(late);
                    if skipped > 0 {
                        stats.pacer_skipped.fetch_add(skipped, Ordering::Relaxed);
                    }
                }
            }
        }
        let result = send_frame(pool, stats, |frame| {
            // A panic in a source (a bug met on an odd driver value) is a camera error: the
            // source is closed and reopened while the slate runs, as for an unplug.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| src.capture(frame, &clock)))
                .unwrap_or_else(|panic| {
                stats.media_panics.fetch_add(1, Ordering::Relaxed);
                Err(CameraError::new(
                    ErrorKind::Other,
                    format!(
                        "internal error in the camera source: {}",
                        super::encode::panic_text(&panic)
                    ),
                ))
            })?;
            stats.on_captured();
            // Device-paced: a camera that runs faster than configured is decimated on its own
            // timeline, not queued; one at the configured rate keeps every frame.
            if !free && !decimator.keep(origin.elapsed()) {
                stats.decimated.fetch_add(1, Ordering::Relaxed);
                return Err(None);
            }
            Ok(())
        });
        if let Err(e) = result {
            if e.kind() == ErrorKind::CorruptFrame {
                // One undecodable picture (an MJPEG frame damaged on the USB bus): skip it and
                // count it; the camera is fine, so it is not closed.
                stats.corrupt_frames.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(source = %spec, error = %e, "corrupt frame dropped");
                continue;
            }
            stats.capture_errors.fetch_add(1, Ordering::Relaxed);
            stats.set_source_state("error");
            tracing::warn!(source = %spec, error = %e, "capture failed; closing the source to reopen it");
            away_since = go_away(&mut source, &mut restarter, &mut pacer, free);
        }
    }
    close_source(source, &spec);
}

/// The origin of frames' monotonic capture times (`I420Frame::mono_us`): one for the process,
/// so the RTP timeline, which the packetizer carries across pipeline restarts, runs on
/// across them too.
pub(super) fn mono_origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Closes `source` (if any), logging what failed while closing it.
fn close_source(source: Option<Box<dyn FrameSource>>, spec: &SourceSpec) {
    if let Some(Err(e)) = source.map(FrameSource::close) {
        tracing::warn!(source = %spec, error = %e, "closing the source failed; it is closed anyway");
    }
}

/// Takes a frame from the pool, lets `fill` draw it and hands it to the encoder. `fill` may
/// fail with a camera error (returned) or decline the frame (`Err(None)`: nothing is sent).
///
/// The frame's monotonic capture time (`mono_us`, on [`mono_origin`]'s time line) is taken right
/// after `fill`, next to the wall-clock time the source stamped: RTP timestamps and send pacing
/// follow it, so a wall-clock step (NTP, a hand-set date) moves neither.
pub(super) fn send_frame(
    pool: &PoolShared,
    stats: &Stats,
    fill: impl FnOnce(&mut I420Frame) -> Result<(), Option<CameraError>>,
) -> Result<(), CameraError> {
    let id = match pool.lock().acquire() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "frame pool exhausted");
            std::thread::sleep(Duration::from_millis(10));
            return Ok(());
        }
    };
    let result = match pool.frame(id) {
        Some(mut frame) => fill(&mut frame).map(|()| {
            frame.mono_us = u64::try_from(mono_origin().elapsed().as_micros()).unwrap_or(u64::MAX);
        }),
        None => return Ok(()),
    };
    match result {
        Ok(()) => {
            let mut guard = pool.lock();
            guard.mark_ready(id).ok();
            stats.set_pool_dropped(guard.dropped());
            drop(guard);
            pool.ready.notify_one();
            Ok(())
        }
        Err(e) => {
            pool.lock().discard(id).ok();
            e.map_or(Ok(()), Err)
        }
    }
}
