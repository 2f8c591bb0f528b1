//! Counters shared by the media threads, the sessions and the HTTP server.
//!
//! Lock-free atomics written on the hot path; `/healthz`, `/metrics` and the minute summary read
//! them. The frame rate is measured over a sliding one-second window of encode times.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use sutantra_hal::SourceInfo;

/// All counters of one node.
#[derive(Debug)]
pub struct Stats {
    /// When the node started.
    pub started: Instant,
    /// Frames delivered by the source.
    pub frames_captured: AtomicU64,
    /// Frames encoded and handed to viewers.
    pub frames_sent: AtomicU64,
    /// Encoded bytes.
    pub bytes_encoded: AtomicU64,
    /// RTP packets produced.
    pub packets: AtomicU64,
    /// Keyframes produced.
    pub keyframes: AtomicU64,
    /// Frames dropped by the pool (encode fell behind).
    pub pool_dropped: AtomicU64,
    /// Frame-clock ticks skipped (capture ran late).
    pub pacer_skipped: AtomicU64,
    /// Camera frames left out because the camera ran faster than configured.
    pub decimated: AtomicU64,
    /// Capture errors.
    pub capture_errors: AtomicU64,
    /// Encode errors.
    pub encode_errors: AtomicU64,
    /// Viewer sessions started.
    pub viewers_joined: AtomicU64,
    /// WHEP requests refused because the viewer limit was reached.
    pub viewers_refused: AtomicU64,
    /// Viewers connected now.
    pub viewers: AtomicUsize,
    /// Keyframe requests received from viewers (PLI/FIR).
    pub keyframe_requests: AtomicU64,
    /// Microseconds since `started` of the last encoded frame (0: none yet).
    pub last_frame_us: AtomicU64,
    /// The light client and the attestations (`sutantra_chain_*`, `sutantra_attest_*`).
    pub chain: ChainStats,
    /// WHIP publishing (`sutantra_publish_*`).
    pub publish: crate::publish::PublishStats,
    /// Operator controls (`sutantra stream ...`, `reboot-stream`), read by the media threads.
    pub control: crate::control::MediaControl,
    window: Mutex<FpsWindow>,
    source: Mutex<SourceState>,
}

/// Gauges and counters of the light client and the attestation pipeline.
#[derive(Debug, Default)]
pub struct ChainStats {
    /// A chain is configured (otherwise `/healthz` says `chain_height: null`).
    pub enabled: AtomicBool,
    /// Height of the newest verified light block (0: none yet).
    pub trusted_height: AtomicU64,
    /// When it was verified, milliseconds since the UNIX epoch (0: never).
    pub last_verified_ms: AtomicU64,
    /// Failed polls: unreachable or lying primary, verification refused.
    pub verify_errors: AtomicU64,
    /// A witness conflict stopped attestations.
    pub halted: AtomicBool,
    /// Attestations signed and committed to the outbox.
    pub attestations: AtomicU64,
    /// Outbox entries waiting for submission.
    pub outbox_depth: AtomicU64,
    /// Outbox entries dropped because it was full (persisted total).
    pub outbox_dropped: AtomicU64,
    /// Attestations accepted by `broadcast_tx_sync` (code 0).
    pub submitted: AtomicU64,
    /// Submission attempts that failed (unreachable, RPC error) and will be retried.
    pub submit_failures: AtomicU64,
    /// Attestations rejected by the chain (code != 0), kept, not retried.
    pub rejected: AtomicU64,
    /// Segments not attested: no verified header yet, or halted.
    pub unanchored: AtomicU64,
    /// Closed segments dropped because the attestation thread fell behind.
    pub segments_dropped: AtomicU64,
    /// The last error of the chain thread, for logs and status.
    pub last_error: Mutex<Option<String>>,
}

impl ChainStats {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The trusted height, `None` before the first verified block or without a chain.
    pub fn height(&self) -> Option<u64> {
        let h = self.trusted_height.load(Ordering::Relaxed);
        (self.enabled.load(Ordering::Relaxed) && h > 0).then_some(h)
    }

    /// Records the chain thread's last error (`None`: the last poll went well).
    pub fn set_last_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.last_error.lock() {
            *g = e;
        }
    }

    /// The chain thread's last error.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|g| g.clone())
    }
}

#[derive(Debug, Default)]
struct FpsWindow {
    /// Encode times (since `started`) of the frames in the last second, oldest first.
    times: std::collections::VecDeque<Duration>,
}

/// What `/healthz` says about the source.
#[derive(Debug, Clone, Default)]
pub struct SourceState {
    /// Source kind and detail.
    pub description: String,
    /// Negotiated width.
    pub width: u32,
    /// Negotiated height.
    pub height: u32,
    /// Configured frame rate.
    pub fps_target: f64,
    /// `running`, `error`.
    pub state: &'static str,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    /// Fresh counters.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            frames_captured: AtomicU64::new(0),
            frames_sent: AtomicU64::new(0),
            bytes_encoded: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            keyframes: AtomicU64::new(0),
            pool_dropped: AtomicU64::new(0),
            pacer_skipped: AtomicU64::new(0),
            decimated: AtomicU64::new(0),
            capture_errors: AtomicU64::new(0),
            encode_errors: AtomicU64::new(0),
            viewers_joined: AtomicU64::new(0),
            viewers_refused: AtomicU64::new(0),
            viewers: AtomicUsize::new(0),
            keyframe_requests: AtomicU64::new(0),
            last_frame_us: AtomicU64::new(0),
            chain: ChainStats::default(),
            publish: crate::publish::PublishStats::default(),
            control: crate::control::MediaControl::default(),
            window: Mutex::new(FpsWindow {
                times: std::collections::VecDeque::with_capacity(256),
            }),
            source: Mutex::new(SourceState::default()),
        }
    }

    /// Records the negotiated source.
    pub fn set_source(&self, info: &SourceInfo) {
        if let Ok(mut s) = self.source.lock() {
            *s = SourceState {
                description: format!("{}: {}", info.kind, info.description),
                width: info.width,
                height: info.height,
                fps_target: info.fps_num as f64 / info.fps_den.max(1) as f64,
                state: "running",
            };
        }
    }

    /// Records a source state change (`running`, `error`).
    pub fn set_source_state(&self, state: &'static str) {
        if let Ok(mut s) = self.source.lock() {
            s.state = state;
        }
    }

    /// The source as last recorded.
    pub fn source(&self) -> SourceState {
        self.source.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A frame left the camera.
    pub fn on_captured(&self) {
        self.frames_captured.fetch_add(1, Ordering::Relaxed);
    }

    /// The pool's drop counter.
    pub fn set_pool_dropped(&self, n: u64) {
        self.pool_dropped.store(n, Ordering::Relaxed);
    }

    /// A frame was encoded into `packets` packets and handed to the viewers; `at` is the time
    /// since the media origin (only differences matter).
    pub fn on_encoded(&self, bytes: usize, keyframe: bool, packets: usize, _at: Duration) {
        let now = self.started.elapsed();
        self.frames_sent.fetch_add(1, Ordering::Relaxed);
        self.bytes_encoded
            .fetch_add(bytes as u64, Ordering::Relaxed);
        self.packets.fetch_add(packets as u64, Ordering::Relaxed);
        if keyframe {
            self.keyframes.fetch_add(1, Ordering::Relaxed);
        }
        self.last_frame_us
            .store(now.as_micros().max(1) as u64, Ordering::Relaxed);
        if let Ok(mut w) = self.window.lock() {
            while w
                .times
                .front()
                .is_some_and(|t| now.saturating_sub(*t) >= Duration::from_secs(1))
            {
                w.times.pop_front();
            }
            if w.times.len() == w.times.capacity() {
                w.times.pop_front();
            }
            w.times.push_back(now);
        }
    }

    /// Frames encoded in the last second.
    pub fn fps(&self) -> f64 {
        let now = self.started.elapsed();
        self.window
            .lock()
            .map(|w| {
                w.times
                    .iter()
                    .filter(|t| now.saturating_sub(**t) < Duration::from_secs(1))
                    .count() as f64
            })
            .unwrap_or(0.0)
    }

    /// Time since the last encoded frame, if any.
    pub fn since_last_frame(&self) -> Option<Duration> {
        let us = self.last_frame_us.load(Ordering::Relaxed);
        (us > 0).then(|| {
            self.started
                .elapsed()
                .saturating_sub(Duration::from_micros(us))
        })
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }
}
