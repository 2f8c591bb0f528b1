//! The media threads: capture → frame pool → VP8 encode → RTP → fan-out to viewers.
//!
//! Two OS threads, because both do blocking work the async runtime must not see: the capture
//! thread (a blocking V4L2 dequeue, or the frame clock for free-running sources) and the encode
//! thread (libvpx). They meet at the fixed [`FramePool`] (drop-oldest when encode falls behind),
//! and the encode thread hands each packet, once, to the [`Hub`], which queues it for every
//! viewer (bounded per viewer) and wakes their writer tasks. The logic lives in `sutantra-core`;
//! this module only adds threads, the clock and counters.

use crate::stats::Stats;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use sutantra_core::codec::vp8::{Vp8Config, Vp8Encoder};
use sutantra_core::fanout::{Fanout, KeyframeLimiter, ViewerId};
use sutantra_core::observer::{EncodedFrameInfo, FrameObserver};
use sutantra_core::pacer::{Pacer, Tick};
use sutantra_core::pool::{FramePool, SlotId};
use sutantra_core::rtp::packetizer::Packetizer;
use sutantra_hal::camera::{SourceRequest, SourceSpec, open_source};
use sutantra_hal::{FrameSource, I420Frame, Pacing, SourceInfo, SystemClock};
use tokio::sync::Notify;

/// One RTP packet as every viewer sends it (SSRC and payload type are stamped per viewer).
#[derive(Debug, Clone)]
pub struct OutPacket {
    /// Sequence number.
    pub seq: u16,
    /// 90 kHz timestamp from the capture time.
    pub timestamp: u32,
    /// Last packet of a frame.
    pub marker: bool,
    /// First packet of a keyframe: a viewer that joins starts here.
    pub keyframe_start: bool,
    /// VP8 payload (descriptor included); shared, never copied per viewer.
    pub payload: Bytes,
}

/// What the media threads need to know.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The camera.
    pub spec: SourceSpec,
    /// Requested capture size and rate.
    pub request: SourceRequest,
    /// Frames in the pool between capture and encode.
    pub frame_pool: usize,
    /// Encoder bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Longest keyframe distance in frames.
    pub keyframe_interval: u32,
    /// libvpx speed.
    pub cpu_used: i32,
    /// Encoder threads.
    pub threads: u32,
    /// Shortest gap between forced keyframes.
    pub min_keyframe_gap: Duration,
    /// Largest RTP payload.
    pub rtp_payload_bytes: usize,
}

/// The meeting point of the encoder and the viewers.
#[derive(Debug)]
pub struct Hub {
    inner: Mutex<HubInner>,
}

#[derive(Debug)]
struct HubInner {
    fanout: Fanout<Arc<OutPacket>>,
    wakers: HashMap<ViewerId, Arc<Notify>>,
}

impl Hub {
    /// A hub for at most `max_viewers`, each with a queue of `queue_packets`.
    pub fn new(max_viewers: usize, queue_packets: usize) -> Result<Self, String> {
        let fanout = Fanout::new(max_viewers, queue_packets).map_err(|e| e.to_string())?;
        Ok(Self {
            inner: Mutex::new(HubInner {
                fanout,
                wakers: HashMap::new(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a viewer. It receives nothing until the next keyframe, which is requested for it.
    /// Returns its id and its wake-up.
    pub fn join(&self) -> Option<(ViewerId, Arc<Notify>)> {
        let mut inner = self.lock();
        let id = inner.fanout.add_viewer().ok()?;
        let notify = Arc::new(Notify::new());
        inner.wakers.insert(id, notify.clone());
        Some((id, notify))
    }

    /// Removes a viewer.
    pub fn leave(&self, id: ViewerId) {
        let mut inner = self.lock();
        let _ = inner.fanout.remove_viewer(id);
        inner.wakers.remove(&id);
    }

    /// Viewer `id` lost the picture (PLI/FIR): it waits for the next keyframe, which the encoder
    /// makes as soon as its rate limit allows.
    pub fn request_keyframe(&self, id: ViewerId) {
        let _ = self.lock().fanout.request_keyframe(id);
    }

    fn take_keyframe_request(&self) -> bool {
        self.lock().fanout.take_keyframe_request()
    }

    /// Moves up to `max` queued packets of viewer `id` into `out`.
    pub fn drain(&self, id: ViewerId, out: &mut Vec<Arc<OutPacket>>, max: usize) {
        self.lock().fanout.drain_into(id, out, max);
    }

    /// Packets dropped for slow viewers, in total.
    pub fn dropped(&self) -> u64 {
        self.lock().fanout.total_dropped()
    }

    /// Counters of viewer `id` (queued, dropped, sent), if it is attached.
    pub fn viewer_stats(&self, id: ViewerId) -> Option<sutantra_core::fanout::ViewerStats> {
        self.lock().fanout.stats(id)
    }

    /// Viewers attached to the hub.
    pub fn viewers(&self) -> usize {
        self.lock().fanout.viewer_count()
    }

    fn publish(&self, packets: &[Arc<OutPacket>]) {
        let mut inner = self.lock();
        for p in packets {
            if p.keyframe_start {
                inner.fanout.push_keyframe_start(p.clone());
            } else {
                inner.fanout.push(p.clone());
            }
        }
        for w in inner.wakers.values() {
            w.notify_one();
        }
    }
}

/// The running media threads.
#[derive(Debug)]
pub struct Media {
    /// What the source negotiated.
    pub info: SourceInfo,
    stop: Arc<AtomicBool>,
    pool: Arc<PoolShared>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// The frame pool shared by the two threads. The pool's state machine (free → writing → ready →
/// reading → free) sits under one short-held lock; each frame buffer has its own lock, which is
/// never contended because the state machine gives a slot to one thread at a time. So a blocking
/// capture or a 5 ms encode never holds the other thread up.
#[derive(Debug)]
struct PoolShared {
    pool: Mutex<FramePool<()>>,
    frames: Vec<Mutex<I420Frame>>,
    ready: Condvar,
}

impl PoolShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, FramePool<()>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn frame(&self, id: SlotId) -> Option<std::sync::MutexGuard<'_, I420Frame>> {
        self.frames
            .get(id.index())
            .map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Why the media path could not start.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The camera could not be opened.
    #[error("camera {spec}: {source}")]
    Camera {
        /// The source spec.
        spec: String,
        /// The HAL error.
        source: sutantra_hal::CameraError,
    },
    /// The encoder refused its configuration.
    #[error("encoder: {0}")]
    Encoder(String),
    /// A thread could not be spawned.
    #[error("cannot start the {0} thread: {1}")]
    Thread(&'static str, std::io::Error),
}

impl Media {
    /// Opens the source and the encoder and starts both threads.
    pub fn start(
        cfg: &MediaConfig,
        hub: Arc<Hub>,
        stats: Arc<Stats>,
        mut observer: Box<dyn FrameObserver>,
    ) -> Result<Self, MediaError> {
        let source = open_source(&cfg.spec, &cfg.request).map_err(|e| MediaError::Camera {
            spec: cfg.spec.to_string(),
            source: e,
        })?;
        let info = source.info();
        let enc_cfg = Vp8Config {
            width: info.width,
            height: info.height,
            fps_num: info.fps_num,
            fps_den: info.fps_den,
            bitrate_kbps: cfg.bitrate_kbps,
            keyframe_interval: cfg.keyframe_interval,
            cpu_used: cfg.cpu_used,
            threads: cfg.threads,
        };
        let mut encoder =
            Vp8Encoder::new(&enc_cfg).map_err(|e| MediaError::Encoder(e.to_string()))?;
        let slots = cfg.frame_pool.max(2);
        let pool = Arc::new(PoolShared {
            pool: Mutex::new(
                FramePool::new(vec![(); slots]).map_err(|e| MediaError::Encoder(e.to_string()))?,
            ),
            frames: (0..slots)
                .map(|_| Mutex::new(I420Frame::new(info.width, info.height)))
                .collect(),
            ready: Condvar::new(),
        });
        let mut packetizer = Packetizer::new(
            cfg.rtp_payload_bytes,
            rand::random::<u16>(),
            rand::random::<u32>(),
            rand::random::<u16>() & 0x7fff,
        )
        .map_err(|e| MediaError::Encoder(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        stats.set_source(&info);
        tracing::info!(
            source = %cfg.spec,
            width = info.width,
            height = info.height,
            fps = format!("{}/{}", info.fps_num, info.fps_den),
            detail = %info.description,
            "source opened"
        );

        let origin = Instant::now();
        let capture = {
            let (pool, stop, stats, spec, req) = (
                pool.clone(),
                stop.clone(),
                stats.clone(),
                cfg.spec.clone(),
                cfg.request,
            );
            let fps = (info.fps_num, info.fps_den);
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || capture_loop(source, spec, req, fps, &pool, &stop, &stats, origin))
                .map_err(|e| MediaError::Thread("capture", e))?
        };
        let encode = {
            let (pool, stop, stats) = (pool.clone(), stop.clone(), stats.clone());
            let gap = cfg.min_keyframe_gap;
            // The bitrate in force; a WHIP relay's REMB may move it (checked once per frame).
            let mut applied_kbps = cfg.bitrate_kbps;
            std::thread::Builder::new()
                .name("encode".into())
                .spawn(move || {
                    let mut limiter = KeyframeLimiter::new(gap);
                    let mut packets = Vec::with_capacity(256);
                    let mut index = 0u64;
                    while let Some(id) = wait_ready(&pool, &stop) {
                        if stats.control.paused() {
                            // `sutantra stream stop`: frames are captured and let go unencoded.
                            pool.lock().release(id).ok();
                            continue;
                        }
                        let now = origin.elapsed();
                        // An operator's `stream keyframe` takes the viewers' request path.
                        let operator = stats.control.take_keyframe();
                        let force = ((hub.take_keyframe_request() | operator)
                            && limiter.allow(now))
                            || limiter.poll(now);
                        crate::publish::apply_target_bitrate(
                            &stats,
                            &mut encoder,
                            &mut applied_kbps,
                        );
                        let Some(frame) = pool.frame(id) else {
                            continue;
                        };
                        let capture_us = frame.capture_us;
                        let result = encoder.encode(&frame, force).map(|enc| {
                            packets.clear();
                            let keyframe = enc.keyframe;
                            let sent = packetizer.packetize(enc.data, capture_us, |p| {
                                packets.push(Arc::new(OutPacket {
                                    seq: p.seq,
                                    timestamp: p.timestamp,
                                    marker: p.marker,
                                    keyframe_start: p.starts_keyframe(),
                                    payload: Bytes::copy_from_slice(p.payload),
                                }));
                            });
                            observer.on_encoded(
                                &EncodedFrameInfo {
                                    index,
                                    capture_us,
                                    rtp_timestamp: sent.timestamp,
                                    keyframe,
                                    bytes: enc.data.len(),
                                },
                                enc.data,
                            );
                            (keyframe, enc.data.len())
                        });
                        drop(frame);
                        pool.lock().release(id).ok();
                        match result {
                            Ok((keyframe, bytes)) if bytes > 0 => {
                                index += 1;
                                hub.publish(&packets);
                                stats.on_encoded(bytes, keyframe, packets.len(), origin.elapsed());
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::error!(error = %e, "encode failed; frame skipped");
                                stats.encode_errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
                .map_err(|e| MediaError::Thread("encode", e))?
        };
        Ok(Self {
            info,
            stop,
            pool,
            threads: vec![capture, encode],
        })
    }

    /// Stops both threads and waits for them.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.pool.ready.notify_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Waits for the next ready frame; `None` on stop.
fn wait_ready(pool: &PoolShared, stop: &AtomicBool) -> Option<SlotId> {
    let mut guard = pool.lock();
    loop {
        if stop.load(Ordering::SeqCst) {
            return None;
        }
        if let Some(id) = guard.take() {
            return Some(id);
        }
        guard = pool
            .ready
            .wait_timeout(guard, Duration::from_millis(200))
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// The capture thread: paces free-running sources with the frame clock, decimates device
/// sources that run faster than configured, and reopens a failed camera with backoff.
#[allow(clippy::too_many_arguments)]
fn capture_loop(
    source: Box<dyn FrameSource>,
    spec: SourceSpec,
    req: SourceRequest,
    (fps_num, fps_den): (u32, u32),
    pool: &PoolShared,
    stop: &AtomicBool,
    stats: &Stats,
    origin: Instant,
) {
    let clock = SystemClock;
    let period = Duration::from_nanos(1_000_000_000 * fps_den as u64 / fps_num.max(1) as u64);
    let Ok(mut pacer) = Pacer::new(fps_num, fps_den, origin.elapsed()) else {
        tracing::error!(fps_num, fps_den, "invalid frame rate; capture stopped");
        return;
    };
    let info = source.info();
    let free = source.pacing() == Pacing::Free;
    // `None` while a failed camera is closed and being reopened.
    let mut source = Some(source);
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::SeqCst) {
        if stats.control.take_restart() && source.is_some() {
            // `sutantra reboot-stream`: close the source; the reopen path below restarts it.
            tracing::info!(source = %spec, "restarting the source on request");
            source = None;
            backoff = Duration::from_millis(500);
            stats.set_source_state("restarting");
        }
        let Some(src) = source.as_mut() else {
            sleep_unless_stopped(backoff, stop);
            backoff = (backoff * 2).min(Duration::from_secs(30));
            match open_source(&spec, &req) {
                Ok(s) if s.info().width == info.width && s.info().height == info.height => {
                    source = Some(s);
                    backoff = Duration::from_millis(500);
                    stats.set_source_state("running");
                    tracing::info!(source = %spec, "source reopened");
                }
                Ok(s) => tracing::error!(
                    source = %spec,
                    size = format!("{}x{}", s.info().width, s.info().height),
                    "source came back with another size; restart the node to use it"
                ),
                Err(e) => {
                    tracing::warn!(source = %spec, error = %e, retry_in = ?backoff, "source still unavailable")
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
                Tick::Due { skipped, .. } => {
                    if skipped > 0 {
                        stats.pacer_skipped.fetch_add(skipped, Ordering::Relaxed);
                    }
                }
            }
        }
        let id = match pool.lock().acquire() {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, "frame pool exhausted");
                std::thread::sleep(period);
                continue;
            }
        };
        let result = match pool.frame(id) {
            Some(mut frame) => src.capture(&mut frame, &clock),
            None => continue,
        };
        match result {
            Ok(()) => {
                stats.on_captured();
                if !free {
                    // Device-paced: keep only the frames the frame clock wants (a camera that
                    // runs faster than configured is decimated, not queued). A quarter period of
                    // tolerance keeps a camera at exactly the configured rate from losing frames
                    // to phase jitter.
                    if let Tick::Wait { .. } = pacer.poll(origin.elapsed() + period / 4) {
                        pool.lock().discard(id).ok();
                        stats.decimated.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                let mut guard = pool.lock();
                guard.publish(id).ok();
                stats.set_pool_dropped(guard.dropped());
                drop(guard);
                pool.ready.notify_one();
            }
            Err(e) => {
                pool.lock().discard(id).ok();
                stats.capture_errors.fetch_add(1, Ordering::Relaxed);
                stats.set_source_state("error");
                tracing::warn!(source = %spec, error = %e, "capture failed; closing the source to reopen it");
                // Close the failed device before reopening: while its file stays open, a camera
                // that comes back is registered as another /dev/videoN.
                source = None;
                backoff = Duration::from_millis(500);
            }
        }
    }
}

/// Sleeps for `d`, waking early when the node stops (shutdown never waits for a backoff).
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}
