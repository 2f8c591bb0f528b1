//! The media threads: capture → frame pool → VP8 encode → RTP → fan-out to viewers.
//!
//! Two OS threads, because both do blocking work the async runtime must not see: the capture
//! thread (a blocking V4L2 dequeue, or the frame clock for free-running sources) and the encode
//! thread (libvpx). They meet at the fixed [`FramePool`] (drop-oldest when encode falls behind),
//! and the encode thread hands each packet, once, to the [`SharedFanout`], which queues it for every
//! viewer (bounded per viewer) and wakes their writer tasks. The logic lives in `sutantra-core`;
//! this module only adds threads, the clock and counters.

pub mod capture;
pub mod control;
pub mod encode;
pub mod fanout;
pub mod snapshot;

pub use fanout::{OutPacket, SharedFanout};

use crate::stats::Stats;
use control::MediaControl;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use sutantra_core::codec::vp8::{Vp8Config, Vp8Encoder, Vp8Tuning};
use sutantra_core::encode::EncodeStep;
use sutantra_core::observer::FrameObserver;
use sutantra_core::pacer::SendGrid;
use sutantra_core::pool::{FramePool, SlotId};
use sutantra_core::rtp::packetizer::Packetizer;
use sutantra_hal::camera::{Orientation, SourceRequest, SourceSpec, open_oriented};
use sutantra_hal::{CameraError, FrameSource, I420Frame, SourceInfo};

/// What the media threads need to know.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The camera.
    pub spec: SourceSpec,
    /// Requested capture size and rate.
    pub request: SourceRequest,
    /// Flips (`[source] hflip`, `vflip`, `rotation`).
    pub orientation: Orientation,
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
    /// libvpx's static-content settings (`encoder.static_threshold`).
    pub tuning: Vp8Tuning,
    /// Shortest gap between forced keyframes.
    pub min_keyframe_gap: Duration,
    /// Hold each encoded frame until this long after its frame-clock deadline (zero: send at
    /// once); see `sutantra_core::pacer::SendGrid`.
    pub send_offset: Duration,
    /// Largest RTP payload.
    pub rtp_payload_bytes: usize,
}

impl MediaConfig {
    /// The media threads' settings from a configuration.
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        Self {
            spec: cfg.source_spec(),
            request: sutantra_hal::camera::SourceRequest {
                width: cfg.source.width,
                height: cfg.source.height,
                fps_num: cfg.source.fps,
                fps_den: 1,
                buffers: cfg.source.buffers,
            },
            orientation: cfg.source.orientation(),
            frame_pool: cfg.source.frame_pool,
            bitrate_kbps: cfg.encoder.bitrate_kbps,
            keyframe_interval: cfg.encoder.keyframe_interval,
            cpu_used: cfg.encoder.cpu_used,
            threads: cfg.encoder.threads,
            tuning: cfg.encoder.tuning(),
            min_keyframe_gap: std::time::Duration::from_millis(cfg.encoder.min_keyframe_gap_ms),
            send_offset: std::time::Duration::from_millis(cfg.encoder.send_offset_ms),
            rtp_payload_bytes: cfg.webrtc.rtp_payload_bytes,
        }
    }
}

/// Opens (and reopens) the camera. The node's is `open_oriented(spec, request, orientation)`; tests of the
/// supervisor pass a scripted fake.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CameraError> + Send>;

/// What outlives one run of the media threads: a restart (new size, new encoder settings)
/// hands them to the next run, so the viewers' RTP sequence numbers continue without a gap
/// and the attestation segment stays open.
pub struct Carry {
    /// The frame observer (attestations).
    pub observer: Box<dyn FrameObserver>,
    /// The packetizer (SSRC, sequence numbers, picture ids).
    pub packetizer: Packetizer,
}

impl std::fmt::Debug for Carry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Carry").finish_non_exhaustive()
    }
}

/// Encode errors in a row after which the encoder is rebuilt (half a second at 30 FPS).
const ENCODER_ERROR_RUN: u32 = 15;

/// The running media threads.
#[derive(Debug)]
pub struct Media {
    /// What the source negotiated.
    pub info: SourceInfo,
    stop: Arc<AtomicBool>,
    pool: Arc<PoolShared>,
    capture: Option<std::thread::JoinHandle<()>>,
    encode: Option<std::thread::JoinHandle<Carry>>,
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
        fanout: Arc<SharedFanout>,
        control: Arc<MediaControl>,
        stats: Arc<Stats>,
        observer: Box<dyn FrameObserver>,
    ) -> Result<Self, MediaError> {
        Self::start_carrying(
            cfg,
            fanout,
            control,
            stats,
            &mut Some(Carry::new(cfg, observer)?),
        )
    }

    /// Starts the threads on `cfg`'s camera, carrying `carry` over from an earlier run; it is
    /// taken only when the start succeeds (a failed start leaves it for another try).
    pub fn start_carrying(
        cfg: &MediaConfig,
        fanout: Arc<SharedFanout>,
        control: Arc<MediaControl>,
        stats: Arc<Stats>,
        carry: &mut Option<Carry>,
    ) -> Result<Self, MediaError> {
        let (spec, req, o) = (cfg.spec.clone(), cfg.request, cfg.orientation);
        let opener: Opener = Box::new(move || open_oriented(&spec, &req, o));
        Self::start_with(cfg, opener, fanout, control, stats, carry)
    }

    /// Starts the threads on the camera `open` opens (see [`Media::start_carrying`]).
    pub fn start_with(
        cfg: &MediaConfig,
        mut open: Opener,
        fanout: Arc<SharedFanout>,
        control: Arc<MediaControl>,
        stats: Arc<Stats>,
        carry: &mut Option<Carry>,
    ) -> Result<Self, MediaError> {
        let source = open().map_err(|e| MediaError::Camera {
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
        let encoder = Vp8Encoder::with_tuning(&enc_cfg, &cfg.tuning)
            .map_err(|e| MediaError::Encoder(e.to_string()))?;
        let Some(Carry {
            observer,
            packetizer,
        }) = carry.take()
        else {
            return Err(MediaError::Encoder("no packetizer to carry over".into()));
        };
        let slots = cfg.frame_pool.max(2);
        let pool = Arc::new(PoolShared {
            pool: Mutex::new(
                FramePool::new(vec![(); slots]).map_err(|e| MediaError::Encoder(e.to_string()))?,
            ),
            frames: (0..slots)
                // Unfilled: a slot becomes resident only once capture first writes it, and
                // capture reuses the lowest free slot, so the slots beyond the one or two in use
                // cost memory only after the encoder has fallen behind (measured: 0.45 MiB per
                // 640x480 slot, BENCHMARKS.md).
                .map(|_| Mutex::new(I420Frame::new_unfilled(info.width, info.height)))
                .collect(),
            ready: Condvar::new(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        stats.set_source(&cfg.spec.to_string(), &info);
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
            let shared = capture::CaptureShared {
                pool: pool.clone(),
                stop: stop.clone(),
                stats: stats.clone(),
                control: control.clone(),
                origin,
            };
            let spec = cfg.spec.clone();
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || capture::capture_loop(source, open, spec, &shared))
                .map_err(|e| MediaError::Thread("capture", e))?
        };
        let encode = {
            let (pool, stop, stats) = (pool.clone(), stop.clone(), stats.clone());
            // The frame clock's grid (anchored at the media origin, like the pacing metric's),
            // with the configured hold after each deadline.
            // Config checks the hold against the configured rate; a camera that runs faster than
            // that may make it a frame interval or more: then frames are sent unheld.
            let grid_with =
                |offset| SendGrid::new(info.fps_num, info.fps_den, Duration::ZERO, offset);
            let grid = match grid_with(cfg.send_offset) {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!(error = %e, "send hold ignored at this camera's frame rate");
                    grid_with(Duration::ZERO).map_err(|e| MediaError::Encoder(e.to_string()))?
                }
            };
            let step = EncodeStep::new(encoder, packetizer, cfg.min_keyframe_gap, grid);
            let thread = encode::EncodeThread {
                pool,
                stop,
                stats,
                control,
                fanout,
                origin,
                enc_cfg,
                applied_kbps: cfg.bitrate_kbps,
            };
            std::thread::Builder::new()
                .name("encode".into())
                .spawn(move || thread.run(step, observer))
                .map_err(|e| MediaError::Thread("encode", e))?
        };
        Ok(Self {
            info,
            stop,
            pool,
            capture: Some(capture),
            encode: Some(encode),
        })
    }

    /// Stops both threads and waits for them; returns what a next run carries over (`None` if
    /// the encode thread panicked). Dropping it flushes the open attestation segment.
    pub fn stop(mut self) -> Option<Carry> {
        self.stop.store(true, Ordering::SeqCst);
        self.pool.ready.notify_all();
        if let Some(t) = self.capture.take() {
            let _ = t.join();
        }
        self.encode.take().and_then(|t| t.join().ok())
    }
}

impl Carry {
    /// A first run's carry: `observer` and a packetizer with random SSRC and sequence start.
    pub fn new(cfg: &MediaConfig, observer: Box<dyn FrameObserver>) -> Result<Self, MediaError> {
        let packetizer = Packetizer::new(
            cfg.rtp_payload_bytes,
            rand::random::<u16>(),
            rand::random::<u32>(),
            rand::random::<u16>() & 0x7fff,
        )
        .map_err(|e| MediaError::Encoder(e.to_string()))?;
        Ok(Self {
            observer,
            packetizer,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;
    use sutantra_core::codec::vp8::Vp8Decoder;
    use sutantra_core::fanout::ViewerId;
    use sutantra_core::observer::EncodedFrameInfo;
    use sutantra_hal::camera::slate::looks_like_slate;
    use sutantra_hal::camera::{CameraError, ErrorKind};
    use sutantra_hal::{Pacing, WallClock};

    /// A camera that is there or not, as the test says: while away, `capture` fails as a
    /// pulled USB camera does and opening it fails as a missing device does.
    struct Camera {
        present: Arc<AtomicBool>,
    }

    impl FrameSource for Camera {
        fn info(&self) -> SourceInfo {
            SourceInfo {
                kind: "fake",
                description: "test camera".into(),
                width: 320,
                height: 240,
                fps_num: 30,
                fps_den: 1,
            }
        }
        fn pacing(&self) -> Pacing {
            Pacing::Free
        }
        fn capture(
            &mut self,
            frame: &mut I420Frame,
            clock: &dyn WallClock,
        ) -> Result<(), CameraError> {
            if !self.present.load(Ordering::SeqCst) {
                return Err(CameraError::new(
                    ErrorKind::Disconnected,
                    "camera unplugged",
                ));
            }
            frame.planes_mut().0.fill(100);
            frame.capture_us = clock.now_us();
            Ok(())
        }
    }

    /// A camera whose `capture` panics once, on its 10th frame (a bug met on an odd driver
    /// value), and works before and after.
    struct PanickyCamera {
        frames: u64,
    }

    impl FrameSource for PanickyCamera {
        fn info(&self) -> SourceInfo {
            Camera {
                present: Arc::default(),
            }
            .info()
        }
        fn pacing(&self) -> Pacing {
            Pacing::Free
        }
        fn capture(
            &mut self,
            frame: &mut I420Frame,
            clock: &dyn WallClock,
        ) -> Result<(), CameraError> {
            self.frames += 1;
            if self.frames == 10 {
                panic!("an odd value from the driver");
            }
            frame.planes_mut().0.fill(100);
            frame.capture_us = clock.now_us();
            Ok(())
        }
    }

    /// A panic in the camera source is a camera error: the source is reopened, the slate covers
    /// the gap, the encode thread and the viewer go on, and the panic is counted.
    #[test]
    fn a_panic_in_the_camera_source_reopens_it_and_the_stream_goes_on() {
        let opens = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let o = opens.clone();
        let opener: Opener = Box::new(move || {
            o.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(PanickyCamera { frames: 0 }) as Box<dyn FrameSource>)
        });
        let (media, stats, seen) = start_watched(opener);
        // The first camera panics on its 10th frame; the reopened one does on its 10th too.
        wait_for("a reopen after the panic", Duration::from_secs(10), || {
            stats.source_reopens.load(Ordering::Relaxed) >= 1
        });
        wait_for(
            "camera frames after the reopen",
            Duration::from_secs(10),
            || {
                seen.lock()
                    .expect("lock")
                    .iter()
                    .filter(|(_, s)| !s)
                    .count()
                    >= 12
            },
        );
        let carry = media.stop();
        assert!(carry.is_some(), "the encode thread ended normally");
        assert!(stats.media_panics.load(Ordering::Relaxed) >= 1);
        assert!(stats.capture_errors.load(Ordering::Relaxed) >= 1);
    }

    #[test]
    fn a_corrupt_camera_frame_is_dropped_and_counted_without_reopening_the_camera() {
        use sutantra_hal::camera::{ScriptedSource, Step};
        let opens = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let o = opens.clone();
        let opener: Opener = Box::new(move || {
            if o.fetch_add(1, Ordering::SeqCst) > 0 {
                // After the script: the camera is gone (the slate goes on).
                return Err(CameraError::new(ErrorKind::NotFound, "gone"));
            }
            let frame = Step::Frame { luma: 150 };
            let script = std::iter::repeat_n(frame, 10)
                .chain(std::iter::repeat_n(Step::Fail(ErrorKind::CorruptFrame), 5))
                .chain(std::iter::repeat_n(frame, 30));
            Ok(
                Box::new(ScriptedSource::new(320, 240, Pacing::Free, script))
                    as Box<dyn FrameSource>,
            )
        });
        let (media, stats, seen) = start_watched(opener);
        // 25 camera pictures: the 10 before the corrupt ones and 15 after, from the same open.
        let camera_frames = || {
            seen.lock()
                .expect("lock")
                .iter()
                .filter(|(_, slate)| !slate)
                .count()
        };
        wait_for(
            "camera frames after the corrupt ones",
            Duration::from_secs(10),
            || camera_frames() >= 25,
        );
        assert_eq!(stats.corrupt_frames.load(Ordering::Relaxed), 5);
        assert_eq!(
            stats.capture_errors.load(Ordering::Relaxed),
            0,
            "a camera failure"
        );
        assert_eq!(stats.source_reopens.load(Ordering::Relaxed), 0);
        assert_eq!(opens.load(Ordering::SeqCst), 1, "the camera was reopened");
        // Let the script play out (its end is a camera error), so the source is dropped with
        // every step played.
        wait_for("the end of the script", Duration::from_secs(10), || {
            stats.capture_errors.load(Ordering::Relaxed) >= 1
        });
        let carry = media.stop();
        assert!(carry.is_some(), "the encode thread ended normally");
    }

    /// The media threads at 320x240 on the camera `opener` opens, with a [`Watch`] that decodes
    /// every encoded frame: the threads, their stats, and what the watch saw.
    #[allow(clippy::type_complexity)]
    fn start_watched(opener: Opener) -> (Media, Arc<Stats>, Arc<StdMutex<Vec<(Instant, bool)>>>) {
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let watch = Box::new(Watch {
            decoder: Vp8Decoder::new().expect("test setup"),
            frame: I420Frame::new(320, 240),
            seen: seen.clone(),
        });
        let cfg = config();
        let fanout = Arc::new(SharedFanout::new(2, 4096).expect("test setup"));
        let stats = Arc::new(Stats::new());
        let media = Media::start_with(
            &cfg,
            opener,
            fanout,
            Arc::default(),
            stats.clone(),
            &mut Some(Carry::new(&cfg, watch).expect("test setup")),
        )
        .expect("test setup");
        (media, stats, seen)
    }

    /// Decodes every encoded frame and records when it came and whether it was the slate.
    struct Watch {
        decoder: Vp8Decoder,
        frame: I420Frame,
        seen: Arc<StdMutex<Vec<(Instant, bool)>>>,
    }

    impl FrameObserver for Watch {
        fn on_encoded(&mut self, _info: &EncodedFrameInfo, data: &[u8]) {
            if let Ok(true) = self.decoder.decode(data, &mut self.frame) {
                let slate = looks_like_slate(self.frame.planes().0, 320, 240);
                self.seen
                    .lock()
                    .expect("lock")
                    .push((Instant::now(), slate));
            }
        }
    }

    fn config() -> MediaConfig {
        MediaConfig {
            spec: SourceSpec::TestPattern,
            request: SourceRequest {
                width: 320,
                height: 240,
                fps_num: 30,
                fps_den: 1,
                buffers: 4,
            },
            orientation: Orientation::default(),
            frame_pool: 4,
            bitrate_kbps: 300,
            keyframe_interval: 60,
            cpu_used: 8,
            threads: 1,
            tuning: Vp8Tuning::default(),
            min_keyframe_gap: Duration::from_millis(100),
            send_offset: Duration::ZERO,
            rtp_payload_bytes: 1200,
        }
    }

    fn wait_for(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) {
        let end = Instant::now() + deadline;
        while !ok() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    struct NoObserver;

    impl FrameObserver for NoObserver {
        fn on_encoded(&mut self, _info: &EncodedFrameInfo, _data: &[u8]) {}
    }

    /// Starts the media threads on `cfg` with one viewer joined to the fan-out.
    fn start_with_viewer(cfg: &MediaConfig) -> (Media, Arc<SharedFanout>, Arc<Stats>, ViewerId) {
        let fanout = Arc::new(SharedFanout::new(2, 4096).expect("test setup"));
        let stats = Arc::new(Stats::new());
        let (viewer, _wake) = fanout.join().expect("test setup");
        let media = Media::start(
            cfg,
            fanout.clone(),
            Arc::default(),
            stats.clone(),
            Box::new(NoObserver),
        )
        .expect("starts");
        (media, fanout, stats, viewer)
    }

    /// Reads `name`'s cumulative bucket `le` and its count from the rendered histogram.
    fn bucket(out: &str, name: &str, le: &str) -> (u64, u64) {
        let find = |key: String| {
            out.lines()
                .find_map(|l| l.strip_prefix(key.as_str()))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        (
            find(format!("{name}_bucket{{le=\"{le}\"}} ")),
            find(format!("{name}_count ")),
        )
    }

    /// `send_offset`: frames are handed to the viewers `offset` after their frame-clock
    /// deadline, not as soon as they are encoded. The lateness histogram is measured against
    /// deadline + offset, so a frame that went out early (no hold) would land a whole
    /// `period - offset` (13 ms) late in it; with the hold nearly all are within a few ms (5 ms
    /// leaves room for a loaded test machine's scheduling).
    #[test]
    fn a_send_offset_puts_frames_on_the_grid_after_the_deadline() {
        let mut cfg = config();
        cfg.send_offset = Duration::from_millis(20);
        let (media, fanout, stats, viewer) = start_with_viewer(&cfg);
        let name = "sutantra_frame_send_lateness_us";
        let rendered = || {
            let mut out = String::new();
            stats.pacing.render(&mut out);
            out
        };
        wait_for("60 frames", Duration::from_secs(20), || {
            bucket(&rendered(), name, "5000").1 >= 60
        });
        drop(media.stop().expect("encode thread"));
        let (within, count) = bucket(&rendered(), name, "5000");
        let mut packets = Vec::new();
        fanout.drain(viewer, &mut packets, usize::MAX);
        assert!(packets.iter().filter(|p| p.marker).count() >= 50);
        assert!(
            within * 10 >= count * 9,
            "{within} of {count} frames within 5 ms of deadline + 20 ms:\n{}",
            rendered()
        );
    }

    /// A hold that is a whole frame interval at the camera's actual rate (config checked it
    /// against the configured one) is dropped with a warning; the stream still starts and flows.
    #[test]
    fn a_hold_too_long_for_the_camera_rate_is_ignored_not_fatal() {
        let mut cfg = config();
        cfg.request.fps_num = 60;
        cfg.send_offset = Duration::from_millis(20);
        let (media, fanout, _stats, viewer) = start_with_viewer(&cfg);
        let mut packets = Vec::new();
        wait_for("frames at 60 fps", Duration::from_secs(20), || {
            fanout.drain(viewer, &mut packets, usize::MAX);
            packets.iter().filter(|p| p.marker).count() >= 30
        });
        drop(media.stop().expect("encode thread"));
    }

    /// The supervisor: a camera that fails and comes back. While it is away the stream goes on
    /// with the slate (no gap a viewer would notice), and the camera's picture is back within
    /// 2 s of its return; a viewer attached to the fan-out receives frames throughout.
    #[test]
    fn a_camera_that_fails_and_returns_is_bridged_by_the_slate() {
        let present = Arc::new(AtomicBool::new(true));
        let p = present.clone();
        let opener: Opener = Box::new(move || {
            if p.load(Ordering::SeqCst) {
                Ok(Box::new(Camera { present: p.clone() }) as Box<dyn FrameSource>)
            } else {
                Err(CameraError::new(ErrorKind::NotFound, "no /dev/video0"))
            }
        });
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let watch = Box::new(Watch {
            decoder: Vp8Decoder::new().expect("test setup"),
            frame: I420Frame::new(320, 240),
            seen: seen.clone(),
        });
        let cfg = config();
        let fanout = Arc::new(SharedFanout::new(2, 4096).expect("test setup"));
        let stats = Arc::new(Stats::new());
        let (viewer, _wake) = fanout.join().expect("test setup");
        let media = Media::start_with(
            &cfg,
            opener,
            fanout.clone(),
            Arc::default(),
            stats.clone(),
            &mut Some(Carry::new(&cfg, watch).expect("test setup")),
        )
        .expect("test setup");
        let camera_frames = |s: &StdMutex<Vec<(Instant, bool)>>| {
            s.lock()
                .expect("lock")
                .iter()
                .filter(|(_, slate)| !slate)
                .count()
        };
        wait_for("camera frames", Duration::from_secs(10), || {
            camera_frames(&seen) >= 15
        });

        present.store(false, Ordering::SeqCst);
        let unplugged = Instant::now();
        wait_for("slate frames", Duration::from_secs(5), || {
            stats.slate_frames.load(Ordering::Relaxed) >= 30
        });
        assert_eq!(stats.source().state, "error");
        // Away for a while: the reopen backoff reaches its cap.
        std::thread::sleep(Duration::from_millis(2500));
        let returned = Instant::now();
        present.store(true, Ordering::SeqCst);
        wait_for("the camera's picture again", Duration::from_secs(5), || {
            seen.lock()
                .expect("test setup")
                .iter()
                .any(|(t, slate)| *t > returned && !slate)
        });
        let back = seen
            .lock()
            .expect("test setup")
            .iter()
            .find(|(t, slate)| *t > returned && !slate)
            .map(|(t, _)| *t - returned)
            .expect("test setup");
        std::thread::sleep(Duration::from_millis(300));
        let mut packets = Vec::new();
        fanout.drain(viewer, &mut packets, usize::MAX);
        let carry = media.stop().expect("encode thread");
        drop(carry);

        assert!(
            back <= Duration::from_secs(2),
            "picture back after {back:?}"
        );
        assert_eq!(stats.source().state, "running");
        assert!(stats.source_reopens.load(Ordering::Relaxed) >= 1);
        let seen = seen.lock().expect("lock");
        // The picture during the outage was the slate, and frames never stopped: no gap
        // between decoded frames longer than a few frame periods.
        assert!(
            seen.iter()
                .filter(|(t, _)| *t > unplugged + Duration::from_millis(200) && *t < returned)
                .all(|(_, slate)| *slate),
            "camera frames while the camera was away"
        );
        let gap = seen
            .windows(2)
            .map(|w| w[1].0 - w[0].0)
            .max()
            .unwrap_or_default();
        assert!(gap < Duration::from_millis(400), "longest gap {gap:?}");
        // The viewer got every frame the encoder made: one marker packet per frame.
        let frames_to_viewer = packets.iter().filter(|p| p.marker).count();
        assert!(
            frames_to_viewer + 5 >= seen.len(),
            "viewer got {frames_to_viewer} of {} frames",
            seen.len()
        );
        println!(
            "camera back after {back:?}; {} slate frames; longest gap {gap:?}",
            stats.slate_frames.load(Ordering::Relaxed)
        );
    }

    /// The real V4L2 source on a fake camera whose device operations fail on purpose: with
    /// EIO, ENXIO and ETIMEDOUT on VIDIOC_DQBUF, on VIDIOC_STREAMOFF and on freeing the buffers
    /// (VIDIOC_REQBUFS(0)). No panic escapes (the capture thread is the only producer of frames,
    /// and frames keep coming), the slate bridges the outage, the failed camera's device is
    /// closed before it is reopened, and its picture is back within 5 s of the fault.
    #[cfg(target_os = "linux")]
    mod camera_faults {
        use super::*;
        use std::path::Path;
        use sutantra_hal::camera::v4l2::V4l2Source;
        use sutantra_hal::camera::v4l2::fake::{
            EIO, ENXIO, ETIMEDOUT, FakeCamera, Faults, Faulty, Op,
        };

        /// Where the fault sits. The teardown faults come after a failed dequeue with the same
        /// errno (a camera that errs mid-stream and then refuses to stop), the case that made
        /// the `v4l` crate's `Drop` panic and, with `panic = "abort"`, took the node down.
        fn arm(faults: &Faults, at: Op, errno: i32) {
            faults.fail_next(Op::Dequeue, errno);
            if at != Op::Dequeue {
                faults.fail_next(at, errno);
            }
        }

        /// Runs one fault against the media threads; returns how long after the fault the
        /// camera's picture was back.
        fn fault_and_reopen(at: Op, errno: i32) -> Duration {
            let cfg = config();
            let camera = FakeCamera::new(30, 100);
            let faults = Faults::new();
            let (cam, f, req) = (camera.clone(), faults.clone(), cfg.request);
            let opener: Opener = Box::new(move || {
                let device = cam.open().map_err(|e| {
                    CameraError::new(ErrorKind::NotFound, format!("fake camera: {e}"))
                })?;
                let device = Box::new(Faulty::new(device, f.clone()));
                let source = V4l2Source::open_device(Path::new("/dev/video-fake"), &req, device)?;
                Ok(Box::new(source) as Box<dyn FrameSource>)
            });
            let (media, stats, seen) = start_watched(opener);
            let camera_frames = || {
                seen.lock()
                    .expect("lock")
                    .iter()
                    .filter(|(_, slate)| !slate)
                    .count()
            };
            wait_for("camera frames", Duration::from_secs(10), || {
                camera_frames() >= 10
            });

            let fault = Instant::now();
            arm(&faults, at, errno);
            // Back = the first camera frame after the slate that followed the fault.
            let back = || {
                let seen = seen.lock().expect("lock");
                let after: Vec<_> = seen.iter().filter(|(t, _)| *t > fault).collect();
                let slate = after.iter().position(|(_, slate)| *slate)?;
                after[slate..]
                    .iter()
                    .find(|(_, slate)| !slate)
                    .map(|(t, _)| *t - fault)
            };
            wait_for(
                "the camera's picture after the fault",
                Duration::from_secs(5),
                || back().is_some(),
            );
            let back = back().expect("checked");
            // The old device was closed before the new one opened.
            assert_eq!(camera.opens(), 2, "{at:?} errno {errno}");
            assert_eq!(camera.open_handles(), 1, "{at:?} errno {errno}");
            std::thread::sleep(Duration::from_millis(200));
            drop(media.stop().expect("encode thread"));
            assert_eq!(camera.open_handles(), 0, "stop closes the camera");

            let mut expected = vec![(Op::Dequeue, errno)];
            if at != Op::Dequeue {
                expected.push((at, errno));
            }
            assert_eq!(faults.fired(), expected, "{at:?} errno {errno}");
            assert!(
                back <= Duration::from_secs(5),
                "{at:?} errno {errno}: back after {back:?}"
            );
            assert_eq!(stats.source().state, "running");
            assert_eq!(stats.source_reopens.load(Ordering::Relaxed), 1);
            assert!(stats.slate_frames.load(Ordering::Relaxed) >= 1);
            // Frames never stopped: the slate filled the outage without a gap.
            let seen = seen.lock().expect("lock");
            let gap = seen
                .windows(2)
                .filter(|w| w[1].0 > fault)
                .map(|w| w[1].0 - w[0].0)
                .max()
                .unwrap_or_default();
            assert!(
                gap < Duration::from_millis(400),
                "{at:?} errno {errno}: gap {gap:?}"
            );
            println!("{at:?} errno {errno}: picture back after {back:?}, longest gap {gap:?}");
            back
        }

        #[test]
        fn dequeue_faults_are_bridged_and_the_camera_reopens() {
            for errno in [EIO, ENXIO, ETIMEDOUT] {
                fault_and_reopen(Op::Dequeue, errno);
            }
        }

        #[test]
        fn stream_off_faults_are_bridged_and_the_camera_reopens() {
            for errno in [EIO, ENXIO, ETIMEDOUT] {
                fault_and_reopen(Op::StreamOff, errno);
            }
        }

        #[test]
        fn buffer_release_faults_are_bridged_and_the_camera_reopens() {
            for errno in [EIO, ENXIO, ETIMEDOUT] {
                fault_and_reopen(Op::Release, errno);
            }
        }
    }
}
