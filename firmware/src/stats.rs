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
    /// Camera frames dropped because they did not decode (corrupt or truncated MJPEG).
    pub corrupt_frames: AtomicU64,
    /// Encode errors.
    pub encode_errors: AtomicU64,
    /// "No signal" slate frames sent while the camera was away.
    pub slate_frames: AtomicU64,
    /// Times a failed camera was reopened.
    pub source_reopens: AtomicU64,
    /// Times the encoder was rebuilt after a run of errors.
    pub encoder_restarts: AtomicU64,
    /// Viewer sessions started.
    pub viewers_joined: AtomicU64,
    /// WHEP requests refused because the viewer limit was reached.
    pub viewers_refused: AtomicU64,
    /// Viewers connected now.
    pub viewers: AtomicUsize,
    /// Answered WHEP sessions dropped before they connected: evicted by newer offers
    /// (`webrtc.max_connecting`), timed out (`webrtc.connect_timeout_ms`), or abandoned by a
    /// client that hung up mid-request.
    pub sessions_abandoned: AtomicU64,
    /// Viewer sessions ended by a panic in their own task (the node went on).
    pub session_panics: AtomicU64,
    /// Panics caught in the media threads: a frame the encoder skipped, or a camera source
    /// closed and reopened (the stream went on).
    pub media_panics: AtomicU64,
    /// WHEP offers refused by the per-address rate limit (HTTP 429).
    pub offers_rate_limited: AtomicU64,
    /// Keyframe requests received from viewers (PLI/FIR).
    pub keyframe_requests: AtomicU64,
    /// Snapshots asked for (`/snapshot.jpg` and `sutantra snapshot`), cached or not.
    pub snapshot_requests: AtomicU64,
    /// JPEG encodes made for snapshots (at most one per `http.snapshot_interval_ms` for polling).
    pub snapshot_encodes: AtomicU64,
    /// Microseconds since `started` of the last encoded frame (0: none yet).
    pub last_frame_us: AtomicU64,
    /// The light client and the attestations (`sutantra_chain_*`, `sutantra_attest_*`).
    pub chain: ChainStats,
    /// Frame pacing: hand-off to the viewers' queues vs the frame clock's deadline.
    pub pacing: PacingStats,
    /// The frame clock's own error: a free-running source's frame taken vs its deadline.
    pub capture_pacing: PacingStats,
    /// The node's own share of the latency: a frame's capture to its last packet handed to the
    /// viewers' queues (encode, packetize, send hold).
    pub capture_to_send: PacingStats,
    /// The HTTP transport: connections open, refused, timed out (`sutantra_http_*`).
    pub http: HttpStats,
    /// A relay's upstream (`whep:` source): state, RTT, loss (`sutantra_upstream_*`); unused
    /// for a camera.
    pub upstream: UpstreamStats,
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
    /// Store operations (reads and durable commits of `node.redb`) that failed with a database
    /// or I/O error, e.g. a full data disk; each is retried by its thread.
    pub store_errors: AtomicU64,
    /// Times the store's database handle was reopened after an I/O error latched it.
    pub store_reopens: AtomicU64,
    /// Segments signed but not stored because the store could not write (lost, never submitted).
    pub segments_lost_store: AtomicU64,
    /// The last error of the chain thread, for logs and status.
    pub last_error: Mutex<Option<String>>,
    /// The store's error while it fails (cleared by the next successful write).
    pub store_error: Mutex<Option<String>>,
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

    /// The light validator's error for status: the store's while it fails (a successful chain
    /// poll does not hide it), else the chain thread's last error.
    pub fn last_error(&self) -> Option<String> {
        self.store_error()
            .or_else(|| self.last_error.lock().ok().and_then(|g| g.clone()))
    }

    /// Records the store's error (`None`: a write succeeded again).
    pub fn set_store_error(&self, e: Option<String>) {
        if let Ok(mut g) = self.store_error.lock() {
            *g = e;
        }
    }

    /// The store's error while it fails.
    pub fn store_error(&self) -> Option<String> {
        self.store_error.lock().ok().and_then(|g| g.clone())
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
    /// The source as configured (`test-pattern`, `v4l2:/dev/video0`, ...).
    pub spec: String,
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
            corrupt_frames: AtomicU64::new(0),
            encode_errors: AtomicU64::new(0),
            slate_frames: AtomicU64::new(0),
            source_reopens: AtomicU64::new(0),
            encoder_restarts: AtomicU64::new(0),
            viewers_joined: AtomicU64::new(0),
            viewers_refused: AtomicU64::new(0),
            viewers: AtomicUsize::new(0),
            sessions_abandoned: AtomicU64::new(0),
            session_panics: AtomicU64::new(0),
            media_panics: AtomicU64::new(0),
            offers_rate_limited: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            snapshot_requests: AtomicU64::new(0),
            snapshot_encodes: AtomicU64::new(0),
            last_frame_us: AtomicU64::new(0),
            chain: ChainStats::default(),
            pacing: PacingStats::default(),
            capture_pacing: PacingStats::named(
                "sutantra_frame_capture_lateness_us",
                "Free-running source: frame taken, microseconds after its frame-clock deadline \
                 (the pacer's own error; the send lateness adds the encode).",
            ),
            capture_to_send: PacingStats::named(
                "sutantra_frame_capture_to_send_us",
                "Frame captured to its last RTP packet handed to the viewers' queues, \
                 microseconds (the node's own share of the latency: encode, packetize, send hold).",
            ),
            http: HttpStats::default(),
            upstream: UpstreamStats::default(),
            window: Mutex::new(FpsWindow {
                times: std::collections::VecDeque::with_capacity(256),
            }),
            source: Mutex::new(SourceState::default()),
        }
    }

    /// Records the configured source `spec` and what it negotiated.
    pub fn set_source(&self, spec: &str, info: &SourceInfo) {
        if let Ok(mut s) = self.source.lock() {
            *s = SourceState {
                spec: spec.to_string(),
                description: format!("{}: {}", info.kind, info.description),
                width: info.width,
                height: info.height,
                fps_target: info.fps_num as f64 / info.fps_den.max(1) as f64,
                state: "running",
            };
        }
        self.pacing.set_rate(info.fps_num, info.fps_den);
        self.capture_pacing.set_rate(info.fps_num, info.fps_den);
    }

    /// Records a source state change (`running`, `error`).
    pub fn set_source_state(&self, state: &'static str) {
        if let Ok(mut s) = self.source.lock() {
            s.state = state;
        }
    }

    /// The source's state alone (`running`, `error`, `restarting`), without copying the rest
    /// (the GPIO thread reads it every 10 ms).
    pub fn source_state(&self) -> &'static str {
        self.source.lock().map(|s| s.state).unwrap_or("")
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
    pub fn on_encoded(&self, bytes: usize, keyframe: bool, packets: usize, at: Duration) {
        let now = self.started.elapsed();
        self.pacing.record(at);
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

/// A relay's upstream WHEP session, as the relay task last saw it.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// The source is a relay (`whep:URL`).
    pub enabled: AtomicBool,
    /// Sessions that reached the connected state.
    pub connects: AtomicU64,
    /// Attempts that failed (HTTP refusal, no connection, no media).
    pub failures: AtomicU64,
    /// Sessions that ended after connecting (the upstream went away).
    pub ended: AtomicU64,
    /// RTP packets received from the upstream (all sessions).
    pub packets_received: AtomicU64,
    /// Upstream packets missing (sequence gaps), all sessions.
    pub packets_lost: AtomicU64,
    /// Packets not forwarded: malformed, before a new session's keyframe, late or foreign.
    pub packets_skipped: AtomicU64,
    /// Keyframe requests (PLI) sent upstream.
    pub plis_sent: AtomicU64,
    /// Round-trip time to the upstream (ICE checks), microseconds; 0 when unknown.
    pub rtt_us: AtomicU64,
    detail: Mutex<UpstreamDetail>,
}

/// The parts of [`UpstreamStats`] that are not numbers.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct UpstreamDetail {
    /// The upstream WHEP URL.
    pub url: String,
    /// `connecting`, `connected`, `waiting` (between attempts), `stopped`.
    pub state: &'static str,
    /// Why the last attempt or session ended, if it did.
    pub last_error: Option<String>,
}

impl UpstreamStats {
    /// Marks the source as a relay of `url`.
    pub fn enable(&self, url: &str) {
        self.enabled.store(true, Ordering::Relaxed);
        if let Ok(mut d) = self.detail.lock() {
            d.url = url.to_string();
            d.state = "connecting";
        }
    }

    /// Records a state change.
    pub fn set_state(&self, state: &'static str) {
        if let Ok(mut d) = self.detail.lock() {
            d.state = state;
        }
    }

    /// Records why the last attempt or session ended.
    pub fn set_error(&self, e: Option<String>) {
        if let Ok(mut d) = self.detail.lock() {
            d.last_error = e;
        }
    }

    /// URL, state and last error.
    pub fn detail(&self) -> UpstreamDetail {
        self.detail.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// Loss over all sessions, 0 to 1.
    pub fn loss(&self) -> f64 {
        let lost = self.packets_lost.load(Ordering::Relaxed) as f64;
        let got = self.packets_received.load(Ordering::Relaxed) as f64;
        if lost + got > 0.0 {
            lost / (lost + got)
        } else {
            0.0
        }
    }

    /// The figures as JSON for `status` and `/healthz` (`null` when the source is a camera).
    pub fn json(&self) -> serde_json::Value {
        if !self.enabled.load(Ordering::Relaxed) {
            return serde_json::Value::Null;
        }
        let d = self.detail();
        let rtt = self.rtt_us.load(Ordering::Relaxed);
        serde_json::json!({
            "url": d.url,
            "state": d.state,
            "last_error": d.last_error,
            "connects": self.connects.load(Ordering::Relaxed),
            "failures": self.failures.load(Ordering::Relaxed),
            "ended": self.ended.load(Ordering::Relaxed),
            "rtt_ms": (rtt > 0).then(|| (rtt as f64 / 100.0).round() / 10.0),
            "packets_received": self.packets_received.load(Ordering::Relaxed),
            "packets_lost": self.packets_lost.load(Ordering::Relaxed),
            "loss": (self.loss() * 10_000.0).round() / 10_000.0,
            "plis_sent": self.plis_sent.load(Ordering::Relaxed),
        })
    }
}

/// Upper bounds (µs) of the pacing histogram's buckets: 250 µs steps to 10 ms, then coarser.
pub const PACING_BUCKETS_US: [u64; 47] = [
    250, 500, 750, 1000, 1250, 1500, 1750, 2000, 2250, 2500, 2750, 3000, 3250, 3500, 3750, 4000,
    4250, 4500, 4750, 5000, 5500, 6000, 6500, 7000, 7500, 8000, 8500, 9000, 9500, 10000, 11000,
    12000, 13000, 14000, 15000, 17500, 20000, 22500, 25000, 27500, 30000, 33333, 40000, 50000,
    66667, 100000, 200000,
];

/// Sender-side frame pacing (issue 7): for each frame handed to the viewers' queues, how long
/// after its send time (the frame-clock deadline `origin + n * period`, the grid of the capture
/// pacer, plus `encoder.send_offset_ms`; the caller subtracts the offset) that
/// happened. A fixed-bucket histogram (cumulative counters, no allocation), its sum, count and
/// max, exported in `/metrics` as `sutantra_frame_send_lateness_us`. The grid is anchored at the
/// media origin; the capture pacer starts a few µs later, so the figure errs on the late side.
/// A frame later than a whole period is attributed to the latest deadline before it.
#[derive(Debug)]
pub struct PacingStats {
    name: &'static str,
    help: &'static str,
    fps_num: AtomicU64,
    fps_den: AtomicU64,
    buckets: [AtomicU64; PACING_BUCKETS_US.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for PacingStats {
    fn default() -> Self {
        Self::named(
            "sutantra_frame_send_lateness_us",
            "Frame handed to the viewers' queues, microseconds after its send time (frame-clock deadline + encoder.send_offset_ms).",
        )
    }
}

impl PacingStats {
    /// A histogram exported as `name` with `help`.
    pub fn named(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            help,
            fps_num: AtomicU64::new(0),
            fps_den: AtomicU64::new(1),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl PacingStats {
    /// The frame rate whose grid the deadlines are on.
    pub fn set_rate(&self, num: u32, den: u32) {
        self.fps_den.store(u64::from(den.max(1)), Ordering::Relaxed);
        self.fps_num.store(u64::from(num), Ordering::Relaxed);
    }

    /// Records a lateness measured by the caller (e.g. the capture pacer's own).
    pub fn record_late(&self, late: Duration) {
        self.add(late.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    fn add(&self, late_us: u64) {
        let i = PACING_BUCKETS_US.partition_point(|&le| le < late_us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(late_us, Ordering::Relaxed);
        self.max_us.fetch_max(late_us, Ordering::Relaxed);
    }

    /// A frame was handed to the viewers at `at` since the media origin.
    pub fn record(&self, at: Duration) {
        let (num, den) = (
            self.fps_num.load(Ordering::Relaxed) as u128,
            self.fps_den.load(Ordering::Relaxed) as u128,
        );
        if num == 0 {
            return;
        }
        // The pacer's exact grid: deadline(n) = n * 1e9 * den / num ns.
        let at_ns = at.as_nanos();
        let n = at_ns * num / (1_000_000_000 * den);
        let deadline_ns = n * 1_000_000_000 * den / num;
        self.add(((at_ns - deadline_ns) / 1000) as u64);
    }

    /// Prometheus text: a histogram (cumulative buckets) and the max.
    pub fn render(&self, out: &mut String) {
        let (name, help) = (self.name, self.help);
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} histogram\n"));
        let mut cum = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            cum += b.load(Ordering::Relaxed);
            match PACING_BUCKETS_US.get(i) {
                Some(le) => out.push_str(&format!("{name}_bucket{{le=\"{le}\"}} {cum}\n")),
                None => out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {cum}\n")),
            }
        }
        out.push_str(&format!(
            "{name}_sum {}\n{name}_count {}\n# HELP {name}_max Largest lateness since start.\n# TYPE {name}_max gauge\n{name}_max {}\n",
            self.sum_us.load(Ordering::Relaxed),
            self.count.load(Ordering::Relaxed),
            self.max_us.load(Ordering::Relaxed)
        ));
    }
}

/// Counters of the HTTP transport (`src/http/server.rs`).
#[derive(Debug, Default)]
pub struct HttpStats {
    /// TCP connections open now (admitted, not yet closed).
    pub connections_open: AtomicUsize,
    /// TCP connections admitted since start.
    pub connections_accepted: AtomicU64,
    /// TCP connections closed at once because `http.max_connections` or
    /// `http.max_connections_per_ip` was reached.
    pub connections_refused: AtomicU64,
    /// Connections closed because request headers (or the TLS handshake) did not arrive within
    /// `http.header_timeout_ms`, or a kept-alive connection sat idle past `http.idle_timeout_ms`.
    pub connections_timed_out: AtomicU64,
    /// `accept()` failures (out of file descriptors, out of memory); the server retries.
    pub accept_errors: AtomicU64,
    /// TLS handshakes that failed (not HTTPS, untrusted certificate, protocol error).
    pub tls_handshake_errors: AtomicU64,
}

#[cfg(test)]
mod pacing_tests {
    use super::*;

    #[test]
    fn lateness_is_measured_from_the_latest_deadline_on_the_grid() {
        let p = PacingStats::default();
        p.set_rate(30, 1);
        p.record(Duration::from_micros(33_333 * 2 + 1_500)); // 1.5 ms after deadline 2
        p.record(Duration::from_micros(100)); // 0.1 ms after deadline 0
        let mut out = String::new();
        p.render(&mut out);
        assert!(
            out.contains("sutantra_frame_send_lateness_us_bucket{le=\"250\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("sutantra_frame_send_lateness_us_bucket{le=\"1500\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("sutantra_frame_send_lateness_us_count 2\n"),
            "{out}"
        );
        assert!(
            out.contains("sutantra_frame_send_lateness_us_max 1499\n"),
            "{out}"
        );
    }
}
