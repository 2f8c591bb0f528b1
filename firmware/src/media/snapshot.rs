//! Still pictures: `GET /snapshot.jpg` and `sutantra snapshot` (one code path, one cache).
//!
//! **Getting a frame.** The frame pool's slots are reused by the capture thread as soon as the
//! encoder lets go of them, so there is no "last frame" to keep a cheap reference to; keeping one
//! anyway would mean copying every frame (14 MB/s at 640x480, 30 FPS) for a picture asked for
//! once a second at most. Instead the media side keeps a small [`SnapshotSlot`]: a request sets
//! a flag, the encode thread (one relaxed atomic load per frame while nobody asks) copies the
//! next frame it takes from the pool into the slot's one I420 buffer and wakes the waiter, who
//! gives up after [`FRAME_WAIT`] (then HTTP answers 503). The buffer is allocated on the first
//! request (a node nobody asks costs nothing) and again only when the frame size changes, so it
//! holds at most one frame. The copy is taken before the pause check, so a stopped stream
//! (`sutantra stream stop`) still answers snapshots.
//!
//! **Encoding.** [`Snapshots`] runs the wait and the JPEG encode on tokio's blocking pool, never on
//! the async workers, one at a time: the cache sits behind an async mutex whose owned guard
//! moves into the blocking job, so concurrent requests wait (asynchronously, no thread each) for
//! the same result, and a request that goes away mid-encode does not let a second encode start
//! beside the first. The result is kept for `http.snapshot_interval_ms`: polling, however fast and
//! by however many clients, costs at most one encode per interval. The cache takes `now` as an
//! input, so the tests run on synthetic time.
//!
//! **The JPEG.** [`encode_jpeg`] feeds the frame's planes to `jpeg-encoder` as YCbCr 4:2:0, the
//! frame's own sampling, without going through RGB: each row hands over the luma row and the
//! chroma row under it (each sample twice), which the encoder's 2x2 subsampling turns back into
//! the same chroma samples. Cameras give limited-range ("video") YCbCr and JFIF wants full range,
//! so the values are stretched through two 256-entry tables on the way in.

use super::control::MediaControl;
use crate::stats::Stats;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use sutantra_hal::I420Frame;

/// How long a request waits for the encode thread's next frame before it answers "no frame".
pub const FRAME_WAIT: Duration = Duration::from_secs(1);
/// The largest JPEG a snapshot may be (a 1920x1080 frame at quality 100 is about 1.5 MB); a
/// larger one is refused with the advice to lower the quality, so the control socket's snapshot
/// reply stays bounded.
pub const MAX_JPEG_BYTES: usize = 8 * 1024 * 1024;

/// The media side of a snapshot: a request flag and one frame buffer (see the module header).
/// It lives in [`MediaControl`], so it outlives a pipeline restart (a reload at a new size).
#[derive(Debug, Default)]
pub struct SnapshotSlot {
    wanted: AtomicBool,
    held: Mutex<Held>,
    filled: Condvar,
}

#[derive(Debug, Default)]
struct Held {
    frame: Option<I420Frame>,
    /// Frames copied so far: a waiter knows its frame came when this moves.
    generation: u64,
}

impl SnapshotSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request waits for a frame (the encode thread asks once per frame).
    pub fn wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// The encode thread: copies `frame` into the slot if a request waits for one, and wakes it.
    pub fn offer(&self, frame: &I420Frame) {
        if !self.wanted() {
            return;
        }
        let mut held = self.lock();
        // Checked again under the lock: the waiter may have given up meanwhile.
        if !self.wanted.swap(false, Ordering::AcqRel) {
            return;
        }
        match &mut held.frame {
            Some(f)
                if f.width() == frame.width()
                    && f.height() == frame.height()
                    && f.data().len() == frame.data().len() =>
            {
                f.data_mut().copy_from_slice(frame.data());
                f.capture_us = frame.capture_us;
                f.mono_us = frame.mono_us;
                f.seq = frame.seq;
            }
            // First use, or a new size after a pipeline restart: the old buffer goes.
            other => *other = Some(frame.clone()),
        }
        held.generation = held.generation.wrapping_add(1);
        self.filled.notify_all();
    }

    /// Blocking: asks the encode thread for its next frame and runs `f` on it, or `None` if no
    /// frame came within `timeout` (no camera frame yet, a pipeline restart, a stall). `f` runs
    /// under the slot's lock, which the encode thread never waits for (it is not asked then).
    pub fn next_frame<R>(&self, timeout: Duration, f: impl FnOnce(&I420Frame) -> R) -> Option<R> {
        let mut held = self.lock();
        let before = held.generation;
        self.wanted.store(true, Ordering::Release);
        let deadline = Instant::now() + timeout;
        while held.generation == before {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.wanted.store(false, Ordering::Release);
                return None;
            }
            held = self
                .filled
                .wait_timeout(held, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        held.frame.as_ref().map(f)
    }
}

/// One encoded snapshot.
#[derive(Debug)]
pub struct Jpeg {
    /// The JPEG file.
    pub bytes: bytes::Bytes,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// JPEG quality it was encoded with.
    pub quality: u8,
    /// The frame's capture time, microseconds since the UNIX epoch.
    pub capture_us: u64,
}

/// Why there is no snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// No frame came within [`FRAME_WAIT`].
    #[error(
        "no frame yet: the camera has delivered no picture within {} s (the node is starting, \
         the pipeline is restarting, or the camera stalled; `sutantra status` says which); \
         retry in a second",
        FRAME_WAIT.as_secs()
    )]
    NoFrame,
    /// The encoder refused the frame, or the JPEG is too large.
    #[error("cannot make the JPEG: {0}")]
    Encode(String),
}

/// The last JPEG and when it was made; pure, `now` is an input.
#[derive(Debug)]
pub struct SnapshotCache {
    interval: Duration,
    last: Option<(Instant, Arc<Jpeg>)>,
}

impl SnapshotCache {
    /// An empty cache whose entries serve for `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// The cached JPEG if it was made less than the interval before `now` at `quality`.
    pub fn fresh(&self, now: Instant, quality: u8) -> Option<Arc<Jpeg>> {
        self.last
            .as_ref()
            .filter(|(at, j)| {
                j.quality == quality && now.saturating_duration_since(*at) < self.interval
            })
            .map(|(_, j)| j.clone())
    }

    /// Keeps `jpeg`, made at `now`.
    pub fn store(&mut self, now: Instant, jpeg: Arc<Jpeg>) {
        self.last = Some((now, jpeg));
    }
}

/// Snapshots for HTTP and the control socket: the frame request, the encode and the cache.
#[derive(Debug)]
pub struct Snapshots {
    control: Arc<MediaControl>,
    stats: Arc<Stats>,
    quality: u8,
    frame_wait: Duration,
    cache: Arc<tokio::sync::Mutex<SnapshotCache>>,
}

impl Snapshots {
    /// Snapshots of the frames the encode thread behind `control` takes, encoded at `quality`
    /// (1-100) and kept for `interval`.
    pub fn new(
        control: Arc<MediaControl>,
        stats: Arc<Stats>,
        quality: u8,
        interval: Duration,
    ) -> Self {
        Self {
            control,
            stats,
            quality: quality.clamp(1, 100),
            frame_wait: FRAME_WAIT,
            cache: Arc::new(tokio::sync::Mutex::new(SnapshotCache::new(interval))),
        }
    }

    /// The same with another wait for the encode thread's frame (tests).
    pub fn with_frame_wait(mut self, wait: Duration) -> Self {
        self.frame_wait = wait;
        self
    }

    /// The latest picture as a JPEG at `quality` (default: the configured one): the cached one
    /// if it is recent enough, else a new one (see the module header). Counted in
    /// `sutantra_snapshot_requests_total` and `sutantra_snapshot_encodes_total`.
    pub async fn get(&self, quality: Option<u8>) -> Result<Arc<Jpeg>, SnapshotError> {
        self.get_at(quality, Instant::now).await
    }

    /// [`Snapshots::get`] on the clock `now` (read once the cache is ours).
    pub async fn get_at(
        &self,
        quality: Option<u8>,
        now: impl FnOnce() -> Instant,
    ) -> Result<Arc<Jpeg>, SnapshotError> {
        self.stats.snapshot_requests.fetch_add(1, Ordering::Relaxed);
        let quality = quality.unwrap_or(self.quality).clamp(1, 100);
        let mut cache = self.cache.clone().lock_owned().await;
        let now = now();
        if let Some(hit) = cache.fresh(now, quality) {
            return Ok(hit);
        }
        let (control, stats, wait) = (self.control.clone(), self.stats.clone(), self.frame_wait);
        // The guard goes with the job: the next request waits for this encode even if the one
        // that started it has gone away.
        tokio::task::spawn_blocking(move || {
            let jpeg = control
                .snapshot
                .next_frame(wait, |frame| {
                    stats.snapshot_encodes.fetch_add(1, Ordering::Relaxed);
                    encode_jpeg(frame, quality).map(|bytes| Jpeg {
                        bytes: bytes.into(),
                        width: frame.width(),
                        height: frame.height(),
                        quality,
                        capture_us: frame.capture_us,
                    })
                })
                .ok_or(SnapshotError::NoFrame)??;
            let jpeg = Arc::new(jpeg);
            cache.store(now, jpeg.clone());
            Ok(jpeg)
        })
        .await
        .map_err(|e| SnapshotError::Encode(format!("the encode job failed: {e}")))?
    }
}

/// Limited-range (16-235 luma, 16-240 chroma) to full-range (0-255) tables, as JFIF expects.
struct Ranges {
    luma: [u8; 256],
    chroma: [u8; 256],
}

impl Ranges {
    fn new() -> Self {
        // Rounded integer scaling; clamped, so values outside the video range are safe.
        let scale = |v: i32, span: i32| (v * 255 + span / 2).div_euclid(span);
        let to_u8 = |v: i32| u8::try_from(v.clamp(0, 255)).unwrap_or(0);
        let mut luma = [0u8; 256];
        let mut chroma = [0u8; 256];
        for (v, (l, c)) in (0i32..).zip(luma.iter_mut().zip(chroma.iter_mut())) {
            // Luma: 16..235 -> 0..255; chroma: 16..240 about 128 -> 0..255 about 128.
            *l = to_u8(scale(v - 16, 219));
            *c = to_u8(scale(v - 128, 224) + 128);
        }
        Self { luma, chroma }
    }
}

/// An I420 frame seen as the rows `jpeg-encoder` asks for (full-resolution Y, Cb, Cr).
struct I420Rows<'a> {
    frame: &'a I420Frame,
    width: u16,
    height: u16,
    ranges: Ranges,
}

impl jpeg_encoder::ImageBuffer for I420Rows<'_> {
    fn get_jpeg_color_type(&self) -> jpeg_encoder::JpegColorType {
        jpeg_encoder::JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let (luma, u, v) = self.frame.planes();
        let w = usize::from(self.width);
        let cw = self.frame.chroma_width() as usize;
        let y = usize::from(y);
        let [by, bu, bv, _] = buffers;
        by.extend(
            row(luma, w, y, w)
                .iter()
                .map(|&s| self.ranges.luma[usize::from(s)]),
        );
        for (plane, out) in [(u, bu), (v, bv)] {
            let chroma = row(plane, cw, y / 2, cw);
            // Each chroma sample covers two columns; an odd width ends on a half.
            out.extend(
                chroma
                    .iter()
                    .flat_map(|&s| {
                        let c = self.ranges.chroma[usize::from(s)];
                        [c, c]
                    })
                    .take(w),
            );
            // A short plane (never for a well-formed frame) is padded rather than misaligned.
            let want = by.len();
            if out.len() < want {
                out.resize(want, 128);
            }
        }
    }
}

/// Row `r` of a plane with `stride` bytes per row (empty if the plane is short).
fn row(plane: &[u8], stride: usize, r: usize, len: usize) -> &[u8] {
    plane.get(r * stride..r * stride + len).unwrap_or_default()
}

/// Encodes `frame` as a baseline JFIF JPEG at `quality` (1-100), YCbCr 4:2:0.
pub fn encode_jpeg(frame: &I420Frame, quality: u8) -> Result<Vec<u8>, SnapshotError> {
    let (Ok(width), Ok(height)) = (u16::try_from(frame.width()), u16::try_from(frame.height()))
    else {
        return Err(SnapshotError::Encode(format!(
            "{}x{} is larger than a JPEG can be (65535x65535)",
            frame.width(),
            frame.height()
        )));
    };
    if frame.data().len() != I420Frame::buffer_len(frame.width(), frame.height()) {
        return Err(SnapshotError::Encode(
            "the frame buffer has the wrong size".into(),
        ));
    }
    // A rough guess that avoids most regrowth: about 1.5 bits per pixel at quality 80.
    let mut out = Vec::with_capacity(frame.data().len() / 4);
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder
        .encode_image(I420Rows {
            frame,
            width,
            height,
            ranges: Ranges::new(),
        })
        .map_err(|e| SnapshotError::Encode(e.to_string()))?;
    if out.len() > MAX_JPEG_BYTES {
        return Err(SnapshotError::Encode(format!(
            "the JPEG is {} bytes, over the {MAX_JPEG_BYTES}-byte limit: lower the quality \
             (http.snapshot_quality or --quality)",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame with a luma ramp and flat chroma, easy to check after a decode.
    fn frame(w: u32, h: u32) -> I420Frame {
        let mut f = I420Frame::new(w, h);
        let (y, u, v) = f.planes_mut();
        for (i, px) in y.iter_mut().enumerate() {
            *px = 16 + (i % w as usize * 219 / w as usize) as u8;
        }
        u.fill(90);
        v.fill(160);
        f
    }

    fn decode(jpeg: &[u8]) -> (jpeg_decoder::ImageInfo, Vec<u8>) {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        let pixels = d.decode().expect("a decodable JPEG");
        (d.info().expect("info"), pixels)
    }

    #[test]
    fn the_jpeg_decodes_to_the_frame_size_and_colour() {
        for (w, h) in [(640, 480), (320, 240), (66, 34)] {
            let jpeg = encode_jpeg(&frame(w, h), 80).expect("encodes");
            assert_eq!(&jpeg[..2], &[0xff, 0xd8], "starts with SOI");
            let (info, rgb) = decode(&jpeg);
            assert_eq!((u32::from(info.width), u32::from(info.height)), (w, h));
            assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
            assert_eq!(rgb.len(), (w * h * 3) as usize);
        }
        // Video black and white come out as full-range black and white.
        let mut black = I420Frame::new(64, 64);
        let jpeg = encode_jpeg(&black, 90).expect("encodes");
        let (_, rgb) = decode(&jpeg);
        assert!(rgb.iter().all(|&c| c <= 3), "black stays black");
        black.planes_mut().0.fill(235);
        let (_, rgb) = decode(&encode_jpeg(&black, 90).expect("encodes"));
        assert!(rgb.iter().all(|&c| c >= 252), "white is white");
    }

    #[test]
    fn range_tables_stretch_video_levels() {
        let r = Ranges::new();
        assert_eq!(
            (r.luma[16], r.luma[235], r.luma[0], r.luma[255]),
            (0, 255, 0, 255)
        );
        assert_eq!((r.chroma[128], r.chroma[240]), (128, 255));
        assert!(r.chroma[16] <= 1, "{}", r.chroma[16]);
    }

    #[test]
    fn a_frame_too_large_for_jpeg_is_an_error_not_a_panic() {
        let f = I420Frame::new_unfilled(70_000, 2);
        let e = encode_jpeg(&f, 80).expect_err("too wide");
        assert!(e.to_string().contains("65535"), "{e}");
    }

    #[test]
    fn the_cache_serves_within_its_interval_at_its_quality() {
        let t0 = Instant::now();
        let mut c = SnapshotCache::new(Duration::from_secs(1));
        assert!(c.fresh(t0, 80).is_none());
        let j = Arc::new(Jpeg {
            bytes: bytes::Bytes::from_static(b"x"),
            width: 2,
            height: 2,
            quality: 80,
            capture_us: 0,
        });
        c.store(t0, j);
        assert!(c.fresh(t0 + Duration::from_millis(999), 80).is_some());
        assert!(c.fresh(t0 + Duration::from_millis(999), 50).is_none());
        assert!(c.fresh(t0 + Duration::from_secs(1), 80).is_none());
    }

    /// Stands in for the encode thread: offers a frame every few ms until stopped.
    fn feeder(control: Arc<MediaControl>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut f = frame(64, 48);
            while !stop.load(Ordering::Relaxed) {
                f.seq += 1;
                control.snapshot.offer(&f);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn twenty_requests_within_an_interval_cost_one_encode() {
        let control = Arc::new(MediaControl::default());
        let stats = Arc::new(Stats::new());
        let snaps = Arc::new(Snapshots::new(
            control.clone(),
            stats.clone(),
            80,
            Duration::from_secs(1),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let feed = feeder(control.clone(), stop.clone());
        let t0 = Instant::now();
        // One after the other, on synthetic time 40 ms apart (0.76 s in all).
        for i in 0..20u64 {
            let j = snaps
                .get_at(None, || t0 + Duration::from_millis(40 * i))
                .await
                .expect("a snapshot");
            assert_eq!((j.width, j.height), (64, 48));
        }
        assert_eq!(stats.snapshot_encodes.load(Ordering::Relaxed), 1);
        assert_eq!(stats.snapshot_requests.load(Ordering::Relaxed), 20);
        // The next interval: one more encode, for 20 requests at once.
        let t1 = t0 + Duration::from_millis(1500);
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let s = snaps.clone();
                tokio::spawn(async move { s.get_at(None, || t1).await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("a snapshot");
        }
        assert_eq!(stats.snapshot_encodes.load(Ordering::Relaxed), 2);
        // Another quality is another picture.
        let j = snaps.get_at(Some(30), || t1).await.expect("a snapshot");
        assert_eq!(j.quality, 30);
        assert_eq!(stats.snapshot_encodes.load(Ordering::Relaxed), 3);
        stop.store(true, Ordering::Relaxed);
        feed.join().expect("feeder");
    }

    #[tokio::test]
    async fn no_frame_is_an_error_after_the_wait_and_nothing_is_cached() {
        let control = Arc::new(MediaControl::default());
        let stats = Arc::new(Stats::new());
        let snaps = Snapshots::new(control.clone(), stats.clone(), 80, Duration::from_secs(1))
            .with_frame_wait(Duration::from_millis(50));
        let e = snaps.get(None).await.expect_err("no frame");
        assert_eq!(e, SnapshotError::NoFrame);
        assert!(e.to_string().contains("retry"), "{e}");
        assert_eq!(stats.snapshot_encodes.load(Ordering::Relaxed), 0);
        // Gave up: the encode thread is not asked any more.
        assert!(!control.snapshot.wanted());
        // A frame now: the next request gets it (the failure was not cached).
        let stop = Arc::new(AtomicBool::new(false));
        let feed = feeder(control.clone(), stop.clone());
        snaps.get(None).await.expect("a snapshot");
        stop.store(true, Ordering::Relaxed);
        feed.join().expect("feeder");
    }

    #[test]
    fn the_slot_copies_only_when_asked_and_follows_a_new_size() {
        let slot = Arc::new(SnapshotSlot::default());
        slot.offer(&frame(64, 48));
        assert!(slot.lock().frame.is_none(), "nobody asked: no copy");
        let s = slot.clone();
        let feed = std::thread::spawn(move || {
            for size in [(64, 48), (32, 16)] {
                while !s.wanted() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                s.offer(&frame(size.0, size.1));
            }
        });
        let a = slot.next_frame(Duration::from_secs(5), |f| (f.width(), f.height()));
        let b = slot.next_frame(Duration::from_secs(5), |f| (f.width(), f.height()));
        feed.join().expect("feeder");
        assert_eq!((a, b), (Some((64, 48)), Some((32, 16))));
    }
}
