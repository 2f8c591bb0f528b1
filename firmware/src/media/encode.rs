//! The encode thread: a loop around the core's [`EncodeStep`] (keyframe decisions, VP8, RTP,
//! send hold), adding what the core leaves out: the pool hand-off, the clock, the operator's
//! and the relays' commands ([`MediaControl`]), the fan-out, counters, and rebuilding an encoder
//! that keeps failing.

use super::control::MediaControl;
use super::{Carry, ENCODER_ERROR_RUN, OutPacket, PoolShared, SharedFanout, wait_ready};
use crate::stats::Stats;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use sutantra_core::codec::vp8::{Vp8Config, Vp8Encoder};
use sutantra_core::encode::EncodeStep;
use sutantra_core::observer::FrameObserver;
use sutantra_core::supervisor::ErrorRun;

/// What the encode thread owns besides the step and the observer.
pub(super) struct EncodeThread {
    pub pool: Arc<PoolShared>,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<Stats>,
    pub control: Arc<MediaControl>,
    pub fanout: Arc<SharedFanout>,
    /// The media clock's origin (`now` is time since it).
    pub origin: Instant,
    /// The encoder's settings, to rebuild it after a run of errors.
    pub enc_cfg: Vp8Config,
    /// The bitrate in force; a WHIP relay's estimate may move it (checked once per frame).
    pub applied_kbps: u32,
}

impl EncodeThread {
    /// Encodes ready frames until stopped; returns what a next run carries over.
    pub(super) fn run(
        mut self,
        mut step: EncodeStep,
        mut observer: Box<dyn FrameObserver>,
    ) -> Carry {
        let mut errors = ErrorRun::new(ENCODER_ERROR_RUN);
        let mut packets = Vec::with_capacity(256);
        let (pool, origin) = (self.pool.clone(), self.origin);
        while let Some(id) = wait_ready(&pool, &self.stop) {
            // A snapshot waits for a frame: copy this one (also while paused, so a stopped
            // stream still answers). One atomic load per frame otherwise.
            if self.control.snapshot.wanted()
                && let Some(frame) = pool.frame(id)
            {
                self.control.snapshot.offer(&frame);
            }
            if self.control.paused() {
                // `sutantra stream stop`: frames are captured and let go unencoded.
                pool.lock().release(id).ok();
                continue;
            }
            let now = origin.elapsed();
            // An operator's `stream keyframe` takes the viewers' request path.
            let request = self.fanout.take_keyframe_request() | self.control.take_keyframe();
            self.control
                .apply_target_bitrate(step.encoder_mut(), &mut self.applied_kbps);
            let Some(frame) = pool.frame(id) else {
                continue;
            };
            let captured_us = frame.mono_us;
            let at = if step.send_offset().is_zero() {
                None
            } else {
                // When it was captured, on this run's time line (the monotonic clock).
                (super::capture::mono_origin() + Duration::from_micros(frame.mono_us))
                    .checked_duration_since(origin)
            };
            packets.clear();
            // A panic in a step (a bug met on one odd frame) costs that frame, like an encode
            // error: the thread goes on, and a run of them rebuilds the encoder. Without this
            // the encode thread would end and every viewer's picture with it.
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                step.step(now, &frame, request, at, |p| {
                    packets.push(Arc::new(OutPacket {
                        seq: p.seq,
                        timestamp: p.timestamp,
                        marker: p.marker,
                        keyframe_start: p.starts_keyframe(),
                        payload: Bytes::copy_from_slice(p.payload),
                    }));
                })
                .map(|out| {
                    observer.on_encoded(&out.info, out.data);
                    (out.info.keyframe, out.info.bytes, out.send_at)
                })
                .map_err(|e| e.to_string())
            }));
            let result = stepped.unwrap_or_else(|panic| {
                self.stats.media_panics.fetch_add(1, Ordering::Relaxed);
                Err(format!("internal error: {}", panic_text(&panic)))
            });
            drop(frame);
            pool.lock().release(id).ok();
            match result {
                Ok((keyframe, bytes, send_at)) if bytes > 0 => {
                    errors.ok();
                    if let Some(until) = send_at {
                        std::thread::sleep(until.saturating_sub(origin.elapsed()));
                    }
                    self.fanout.broadcast(&packets);
                    // The node's own share of the latency: capture to the last packet queued.
                    self.stats.capture_to_send.record_late(
                        super::capture::mono_origin()
                            .elapsed()
                            .saturating_sub(Duration::from_micros(captured_us)),
                    );
                    // Lateness is measured against the send time: deadline + hold.
                    let sent = origin.elapsed().saturating_sub(step.send_offset());
                    self.stats.on_encoded(bytes, keyframe, packets.len(), sent);
                }
                Ok(_) => errors.ok(),
                Err(e) => {
                    tracing::error!(error = %e, "encode failed; frame skipped");
                    self.stats.encode_errors.fetch_add(1, Ordering::Relaxed);
                    if errors.error() {
                        // A run of failures: the encoder is broken, not unlucky.
                        match Vp8Encoder::new(&self.enc_cfg) {
                            Ok(enc) => {
                                step.replace_encoder(enc);
                                self.applied_kbps = self.enc_cfg.bitrate_kbps;
                                self.stats.encoder_restarts.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(
                                    "encoder rebuilt after {ENCODER_ERROR_RUN} errors in a row"
                                );
                            }
                            Err(e) => tracing::error!(error = %e, "cannot rebuild the encoder"),
                        }
                    }
                }
            }
        }
        Carry {
            observer,
            packetizer: step.into_packetizer(),
        }
    }
}

/// The message of a caught panic's payload.
pub(super) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
