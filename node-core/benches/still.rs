//! Still scenes (issue 17, point 3): what libvpx's realtime tools for static content
//! (`VP8E_SET_STATIC_THRESHOLD`, `VP8E_SET_NOISE_SENSITIVITY`, `VP8E_SET_SCREEN_CONTENT_MODE`)
//! cost and save on a mostly still picture, against the fully moving test pattern.
//!
//! In process, one thread: 300 frames at 640x480, 30 fps, 1 Mbit/s, the node's encoder settings
//! (`Vp8Config::default()`: realtime, fixed speed 6, CBR, one thread), for each scene and each
//! candidate tuning (`Vp8Tuning`). The scenes are made in memory, frame by frame, outside the
//! timed part:
//!
//! - `moving`: the test pattern the node sends (`sutantra_hal::TestPattern`, everything moves);
//! - `still`: a fixed natural-looking picture (gradients, soft shapes, fine texture) with a
//!   64x64 textured block moving over it, and the test pattern's latency stamp and frame number
//!   changing every frame, as they do in the node's pattern;
//! - `still-noise1.0`, `still-noise2.0`: `still` plus fresh sensor-like noise on every frame
//!   (luma sigma 1 or 2, chroma half that), as a real camera on a still scene delivers;
//! - `still-pattern`: the test pattern frozen at its first frame, with the moving block, stamp
//!   and frame number;
//! - `photo:NAME` (only with `BENCH_STILL_Y4M=FILE[,FILE..]`, 640x480 4:2:0 Y4Ms): `still` with
//!   each file's first frame as the picture, e.g. a photograph converted with
//!   `ffmpeg -i photo.jpg -vf scale=640:480:force_original_aspect_ratio=increase,crop=640:480
//!   -frames:v 1 -pix_fmt yuv420p photo.y4m`.
//!
//! Per frame: CPU time of the encode call alone (the thread's CPU clock,
//! `CLOCK_THREAD_CPUTIME_ID`, not wall time: the machine is shared), the bytes, and the luma
//! PSNR of the decoded picture (the crate's own `Vp8Decoder`) against the encoder's input; for
//! the noisy scenes also against the picture without the noise. The first 10 frames (keyframe,
//! rate control settling) are not counted. Each (scene, tuning) is run `--reps` times (5),
//! interleaved in a rotating order. At a fixed speed the encode is deterministic (the same
//! work on frame `n` in every run) and a shared machine only adds time, so the figure is the
//! mean over the frames of each frame's least CPU over the runs; the runs' own means are shown
//! beside it (median [min-max]). Ratios are within this run. `BENCH_CPU_USED` sets another
//! libvpx speed (default: the node's; a positive, adaptive one is not deterministic, so there
//! the per-frame least is only a lower bound).
//!
//! The peer: ffmpeg's libvpx (`-deadline realtime`, the same speed and rate control) on the same
//! frames (moving, still, the photos), piped in raw, with its default `-static-thresh 0`, with 1
//! and with the node's value; CPU from the child's rusage minus that of a pass-through ffmpeg on
//! the same input. Skipped without ffmpeg or with `BENCH_FFMPEG=0`.
//!
//! Run: `cargo bench -p sutantra-core --bench still [-- --frames N --reps R --quick
//! --tunings ST:NS:SC,..]` (`--quick`: today's and the default tuning only; `--tunings`: these
//! static threshold : noise sensitivity : screen content triples instead of the built-in list).

// A benchmark reads clocks and writes a temporary file (node-core's clippy.toml forbids both in
// the library).
#![allow(clippy::disallowed_methods)]

use std::io::Write;
use std::process::{Command, Stdio};

use sutantra_core::codec::vp8::Vp8Tuning;
use sutantra_core::codec::{Vp8Config, Vp8Decoder, Vp8Encoder};
use sutantra_hal::camera::digits::draw_number;
use sutantra_hal::{FixedClock, FrameSource, I420Frame, TestPattern, Y4mSource, write_stamp};

const W: u32 = 640;
const H: u32 = 480;
const FPS: u32 = 30;
const KBPS: u32 = 1000;
const WARMUP: usize = 10;
/// The test pattern's frame number: position and scale (hal `camera/test_pattern.rs`).
const NUMBER_X: u32 = 16;
const NUMBER_Y: u32 = 40;
const NUMBER_SCALE: u32 = 6;
/// The moving block of the still scenes.
const BLOCK: usize = 64;
const T0_US: u64 = 1_700_000_000_000_000;

// ---------------------------------------------------------------------------------------------
// Measuring

/// CPU time consumed by the calling thread so far, nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time (user + system) of all waited-for children so far, nanoseconds.
fn children_cpu_ns() -> u64 {
    // SAFETY: all-zero bytes are a valid `rusage`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_CHILDREN)");
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Luma PSNR of `b` against `a`; 99 dB for identical planes.
fn y_psnr(a: &I420Frame, b: &I420Frame) -> f64 {
    let (ya, yb) = (a.planes().0, b.planes().0);
    let se: u64 = ya
        .iter()
        .zip(yb)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)).pow(2))
        .sum();
    if se == 0 {
        return 99.0;
    }
    let mse = se as f64 / ya.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// Scenes

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scene {
    Moving,
    Still,
    /// `still` with sensor noise of this luma sigma, in tenths (chroma: half of it).
    StillNoisy(u32),
    StillPattern,
    /// The `n`th file of `BENCH_STILL_Y4M`.
    Photo(usize),
}

fn photo_paths() -> Vec<String> {
    std::env::var("BENCH_STILL_Y4M")
        .map(|v| {
            v.split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Scene {
    fn name(self) -> String {
        match self {
            Scene::Moving => "moving".into(),
            Scene::Still => "still".into(),
            Scene::StillNoisy(s) => format!("still-noise{}.{}", s / 10, s % 10),
            Scene::StillPattern => "still-pattern".into(),
            Scene::Photo(i) => {
                let paths = photo_paths();
                let stem = std::path::Path::new(&paths[i])
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("photo")
                    .to_string();
                format!("photo:{stem}")
            }
        }
    }
}

/// A small, fast, deterministic PRNG (splitmix64), so every tuning sees the same frames.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn hash2(x: u32, y: u32) -> u32 {
    let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 13;
    h
}

/// A fixed picture that looks roughly natural to an encoder: a sky-to-ground gradient, a few
/// soft-edged shapes, mid-frequency texture and fine grain, smooth chroma.
fn natural_picture() -> I420Frame {
    let mut f = I420Frame::new(W, H);
    let (w, h) = (W as usize, H as usize);
    let cw = f.chroma_width() as usize;
    let (y, u, v) = f.planes_mut();
    let blobs: [(f32, f32, f32, f32); 5] = [
        (160.0, 300.0, 90.0, 60.0),
        (420.0, 250.0, 120.0, -50.0),
        (540.0, 380.0, 70.0, 45.0),
        (300.0, 150.0, 60.0, 35.0),
        (90.0, 120.0, 50.0, -30.0),
    ];
    for r in 0..h {
        for c in 0..w {
            let (xf, yf) = (c as f32, r as f32);
            let mut l = 70.0 + 110.0 * (yf / h as f32) + 20.0 * (xf / w as f32);
            for &(bx, by, rad, amp) in &blobs {
                let d = ((xf - bx).powi(2) + (yf - by).powi(2)).sqrt();
                let edge = ((rad - d) / 6.0).clamp(0.0, 1.0);
                l += amp * edge;
            }
            l += 9.0 * (xf / 7.3 + 0.7 * (yf / 11.0).sin()).sin() * (yf / 9.1).cos();
            let grain = (hash2(c as u32, r as u32) & 15) as f32 - 7.5;
            y[r * w + c] = (l + grain).clamp(16.0, 235.0) as u8;
        }
    }
    for r in 0..h / 2 {
        for c in 0..cw {
            let (xf, yf) = (c as f32, r as f32);
            u[r * cw + c] = (128.0 - 25.0 * (yf / 240.0) + 10.0 * (xf / 37.0).sin()) as u8;
            v[r * cw + c] = (120.0 + 20.0 * (xf / 320.0) + 8.0 * (yf / 29.0).cos()) as u8;
        }
    }
    f
}

/// The moving block's texture (luma), 64x64: a checker with a gradient, clearly not background.
fn block_texture() -> Vec<u8> {
    (0..BLOCK * BLOCK)
        .map(|i| {
            let (r, c) = (i / BLOCK, i % BLOCK);
            let check = if (r / 8 + c / 8) % 2 == 0 { 60 } else { 0 };
            (40 + check + r * 2 + (hash2(c as u32 + 999, r as u32) & 7) as usize) as u8
        })
        .collect()
}

/// Frames of one scene, made one at a time (so 300 frames do not sit in memory).
struct SceneSource {
    scene: Scene,
    pattern: TestPattern,
    base: I420Frame,
    block: Vec<u8>,
}

impl SceneSource {
    fn new(scene: Scene) -> Self {
        let mut pattern = TestPattern::new(W, H, FPS, 1).expect("test pattern");
        let base = match scene {
            Scene::StillPattern => {
                let mut f = I420Frame::new(W, H);
                pattern
                    .capture(&mut f, &FixedClock(T0_US))
                    .expect("capture");
                f
            }
            Scene::Photo(i) => {
                let path = photo_paths()[i].clone();
                let mut y4m = Y4mSource::open(path.as_ref()).expect("open BENCH_STILL_Y4M");
                assert_eq!(
                    (y4m.info().width, y4m.info().height),
                    (W, H),
                    "BENCH_STILL_Y4M must be {W}x{H}"
                );
                let mut f = I420Frame::new(W, H);
                y4m.capture(&mut f, &FixedClock(T0_US)).expect("read Y4M");
                f
            }
            _ => natural_picture(),
        };
        Self {
            scene,
            pattern,
            base,
            block: block_texture(),
        }
    }

    /// Fills `out` with frame `n`; `clean` gets the same frame without sensor noise.
    fn frame(&mut self, n: usize, out: &mut I420Frame, clean: &mut I420Frame) {
        let now = T0_US + n as u64 * 1_000_000 / u64::from(FPS);
        if self.scene == Scene::Moving {
            self.pattern
                .capture(out, &FixedClock(now))
                .expect("capture");
            clean.data_mut().copy_from_slice(out.data());
            return;
        }
        out.data_mut().copy_from_slice(self.base.data());
        let w = W as usize;
        // The block bounces across the middle of the picture, 4 px per frame right, 2 down.
        let bx = bounce(n * 4, w - BLOCK) & !1;
        let by = 100 + (bounce(n * 2, H as usize - BLOCK - 140) & !1);
        let cw = w / 2;
        {
            let (y, u, v) = out.planes_mut();
            for r in 0..BLOCK {
                let row = (by + r) * w + bx;
                y[row..row + BLOCK].copy_from_slice(&self.block[r * BLOCK..(r + 1) * BLOCK]);
            }
            for r in 0..BLOCK / 2 {
                let row = (by / 2 + r) * cw + bx / 2;
                u[row..row + BLOCK / 2].fill(90);
                v[row..row + BLOCK / 2].fill(170);
            }
            draw_number(y, w, NUMBER_X, NUMBER_Y, NUMBER_SCALE, n as u64, 235, 16);
        }
        write_stamp(out, now);
        clean.data_mut().copy_from_slice(out.data());
        if let Scene::StillNoisy(tenths) = self.scene {
            let mut rng = Rng(0xC0FF_EE00 ^ n as u64);
            let sigma = tenths as f32 / 10.0;
            let (y, u, v) = out.planes_mut();
            add_noise(y, &mut rng, sigma);
            add_noise(u, &mut rng, sigma / 2.0);
            add_noise(v, &mut rng, sigma / 2.0);
        }
    }
}

fn bounce(t: usize, range: usize) -> usize {
    let p = t % (2 * range);
    if p <= range { p } else { 2 * range - p }
}

/// Adds roughly Gaussian noise of standard deviation ~`sigma` (sum of four uniforms).
fn add_noise(plane: &mut [u8], rng: &mut Rng, sigma: f32) {
    let mut bits = 0u64;
    let mut left = 0;
    for px in plane.iter_mut() {
        if left == 0 {
            bits = rng.next();
            left = 4;
        }
        // Four 4-bit uniforms (variance 21.25 each, sum 85, sd 9.2): scale to sigma.
        let s: i32 = (0..4).map(|k| ((bits >> (k * 4)) & 15) as i32).sum::<i32>() - 30;
        bits >>= 16;
        left -= 1;
        let d = (s as f32 * sigma / 9.22).round() as i32;
        *px = (i32::from(*px) + d).clamp(0, 255) as u8;
    }
}

// ---------------------------------------------------------------------------------------------
// The node's encoder

#[derive(Clone)]
struct Candidate {
    name: String,
    tuning: Vp8Tuning,
}

fn t(static_threshold: u32, noise_sensitivity: u32, screen_content_mode: u32) -> Vp8Tuning {
    Vp8Tuning {
        static_threshold,
        noise_sensitivity,
        screen_content_mode,
    }
}

/// What the encoder used before issue 17.
const TODAY: Vp8Tuning = Vp8Tuning {
    static_threshold: 1,
    noise_sensitivity: 0,
    screen_content_mode: 0,
};

/// `ST:NS:SC,..` into candidates (today's first, always).
fn parse_tunings(list: &str) -> Vec<Candidate> {
    let mut c = vec![Candidate {
        name: "today: st 1".into(),
        tuning: TODAY,
    }];
    for item in list.split(',').filter(|i| !i.is_empty()) {
        let v: Vec<u32> = item
            .split(':')
            .map(|x| x.parse().expect("--tunings ST:NS:SC,.."))
            .collect();
        let tuning = t(
            v[0],
            v.get(1).copied().unwrap_or(0),
            v.get(2).copied().unwrap_or(0),
        );
        let mut name = format!("st {}", tuning.static_threshold);
        if tuning.noise_sensitivity != 0 {
            name += &format!(" ns {}", tuning.noise_sensitivity);
        }
        if tuning.screen_content_mode != 0 {
            name += &format!(" screen {}", tuning.screen_content_mode);
        }
        if tuning == Vp8Tuning::default() {
            name += " (default)";
        }
        c.push(Candidate { name, tuning });
    }
    c
}

fn candidates(quick: bool) -> Vec<Candidate> {
    let mut c = vec![Candidate {
        name: "today: st 1".into(),
        tuning: TODAY,
    }];
    if Vp8Tuning::default() != TODAY {
        c.push(Candidate {
            name: format!("default: st {}", Vp8Tuning::default().static_threshold),
            tuning: Vp8Tuning::default(),
        });
    }
    if quick {
        return c;
    }
    c.extend([
        Candidate {
            name: "st 300".into(),
            tuning: t(300, 0, 0),
        },
        Candidate {
            name: "st 400".into(),
            tuning: t(400, 0, 0),
        },
        Candidate {
            name: "st 700".into(),
            tuning: t(700, 0, 0),
        },
        Candidate {
            name: "st 1000".into(),
            tuning: t(1000, 0, 0),
        },
        Candidate {
            name: "st 2000".into(),
            tuning: t(2000, 0, 0),
        },
        Candidate {
            name: "ns 1 (WebRTC on ARM)".into(),
            tuning: t(1, 1, 0),
        },
        Candidate {
            name: "ns 4 (WebRTC on x86)".into(),
            tuning: t(1, 4, 0),
        },
        Candidate {
            name: "screen 1".into(),
            tuning: t(1, 0, 1),
        },
        Candidate {
            name: "screen 2 (WebRTC screenshare, st 300)".into(),
            tuning: t(300, 0, 2),
        },
        Candidate {
            name: "st 500 ns 1".into(),
            tuning: t(500, 1, 0),
        },
    ]);
    c
}

/// The libvpx speed: the node's default, or `BENCH_CPU_USED` (as in the `media` bench).
fn cpu_used() -> i32 {
    std::env::var("BENCH_CPU_USED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(Vp8Config::default().cpu_used)
}

/// One run of one scene with one tuning.
struct Run {
    /// Mean and median CPU per frame of the encode call, ms.
    cpu_mean_ms: f64,
    cpu_median_ms: f64,
    /// CPU of each counted frame's encode call, ms.
    cpu_ms: Vec<f64>,
    kbps: f64,
    /// Mean luma PSNR against the encoder's input, dB.
    psnr: f64,
    /// Mean luma PSNR against the picture without sensor noise, dB (= `psnr` without noise).
    psnr_clean: f64,
    /// Frames libvpx dropped (no output; the node never wants that). A viewer keeps showing
    /// the previous picture, and the PSNR is counted that way.
    dropped: usize,
}

fn encode_scene(scene: Scene, cand: &Candidate, frames: usize) -> Run {
    let cfg = Vp8Config {
        width: W,
        height: H,
        fps_num: FPS,
        fps_den: 1,
        bitrate_kbps: KBPS,
        cpu_used: cpu_used(),
        ..Vp8Config::default()
    };
    let mut enc = Vp8Encoder::with_tuning(&cfg, &cand.tuning).expect("encoder");
    let mut dec = Vp8Decoder::new().expect("decoder");
    let mut src = SceneSource::new(scene);
    let (mut input, mut clean, mut decoded) = (
        I420Frame::new(W, H),
        I420Frame::new(W, H),
        I420Frame::new(W, H),
    );
    let mut payload = Vec::with_capacity(256 * 1024);
    let mut cpu = Vec::with_capacity(frames);
    let (mut bytes, mut psnr, mut psnr_clean, mut dropped) = (0usize, 0.0, 0.0, 0usize);
    for n in 0..frames + WARMUP {
        src.frame(n, &mut input, &mut clean);
        let t0 = thread_cpu_ns();
        let e = enc.encode(&input, n == 0).expect("encode");
        let t1 = thread_cpu_ns();
        payload.clear();
        payload.extend_from_slice(e.data);
        // Nothing to show leaves `decoded` as it was: the previous picture, what a viewer sees.
        let shown = dec.decode(&payload, &mut decoded).expect("decode");
        assert!(shown || n > 0, "{}: no first frame", scene.name());
        if n >= WARMUP {
            dropped += usize::from(!shown);
            cpu.push((t1 - t0) as f64 / 1e6);
            bytes += payload.len();
            psnr += y_psnr(&input, &decoded);
            psnr_clean += y_psnr(&clean, &decoded);
        }
    }
    let nf = frames as f64;
    Run {
        cpu_mean_ms: cpu.iter().sum::<f64>() / nf,
        cpu_median_ms: median(&mut cpu.clone()),
        cpu_ms: cpu,
        kbps: bytes as f64 * 8.0 * f64::from(FPS) / nf / 1000.0,
        psnr: psnr / nf,
        psnr_clean: psnr_clean / nf,
        dropped,
    }
}

// ---------------------------------------------------------------------------------------------
// The peer: ffmpeg's libvpx on the same frames

/// Pipes the scene's frames (raw I420) into `ffmpeg` with `codec_args`; returns the child's CPU
/// in ns and the IVF file it wrote (if it encoded).
fn ffmpeg_run(scene: Scene, frames: usize, codec_args: &[String], out: &str) -> Option<u64> {
    let size = format!("{W}x{H}");
    let mut args: Vec<String> = [
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        "-s",
        &size,
        "-r",
        "30",
        "-i",
        "pipe:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(codec_args.iter().cloned());
    args.push(out.to_string());
    let before = children_cpu_ns();
    let mut child = Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let mut src = SceneSource::new(scene);
    let (mut input, mut clean) = (I420Frame::new(W, H), I420Frame::new(W, H));
    for n in 0..frames + WARMUP {
        src.frame(n, &mut input, &mut clean);
        stdin.write_all(input.data()).ok()?;
    }
    drop(stdin);
    let status = child.wait().ok()?;
    if !status.success() {
        eprintln!("ffmpeg {args:?} failed: {status}");
        return None;
    }
    Some(children_cpu_ns() - before)
}

/// The VP8 frames of an IVF file.
fn ivf_frames(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if data.len() < 32 || &data[..4] != b"DKIF" {
        return out;
    }
    let header = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut at = header;
    while at + 12 <= data.len() {
        let len = u32::from_le_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        at += 12;
        if at + len > data.len() {
            break;
        }
        out.push(&data[at..at + len]);
        at += len;
    }
    out
}

struct PeerRow {
    name: String,
    /// CPU per frame: the least over the runs, and the runs' median.
    cpu_ms: f64,
    cpu_median_ms: f64,
    kbps: f64,
    psnr: f64,
}

fn ffmpeg_peer(scene: Scene, frames: usize, static_thresh: u32, reps: usize) -> Option<PeerRow> {
    let dir = std::env::temp_dir();
    let out = dir.join(format!("sutantra-still-{}.ivf", std::process::id()));
    let out_s = out.to_str()?.to_string();
    let k = format!("{KBPS}k");
    let speed = cpu_used().to_string();
    let vpx: Vec<String> = [
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        &speed,
        "-threads",
        "1",
        "-b:v",
        &k,
        "-minrate",
        &k,
        "-maxrate",
        &k,
        "-bufsize",
        &k,
        "-rc_init_occupancy",
        "500k",
        "-undershoot-pct",
        "100",
        "-overshoot-pct",
        "15",
        "-qmin",
        "2",
        "-qmax",
        "56",
        "-g",
        "300",
        "-lag-in-frames",
        "0",
        "-error-resilient",
        "default",
        "-max-intra-rate",
        "900",
        "-static-thresh",
        &static_thresh.to_string(),
        "-f",
        "ivf",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // The same input through ffmpeg without encoding: its start-up and pipe reading, subtracted.
    let pass: Vec<String> = ["-c:v", "rawvideo", "-f", "null"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut per_frame = Vec::with_capacity(reps);
    for _ in 0..reps {
        let cpu = ffmpeg_run(scene, frames, &vpx, &out_s)?;
        let base = ffmpeg_run(scene, frames, &pass, "-")?;
        // All frames (including the warm-up ones) were encoded by the timed child.
        per_frame.push(cpu.saturating_sub(base) as f64 / 1e6 / (frames + WARMUP) as f64);
    }
    let data = std::fs::read(&out).ok()?;
    let _ = std::fs::remove_file(&out);

    let vp8 = ivf_frames(&data);
    if vp8.len() != frames + WARMUP {
        eprintln!(
            "ffmpeg wrote {} frames, expected {}",
            vp8.len(),
            frames + WARMUP
        );
        return None;
    }
    let mut dec = Vp8Decoder::new().ok()?;
    let mut src = SceneSource::new(scene);
    let (mut input, mut clean, mut decoded) = (
        I420Frame::new(W, H),
        I420Frame::new(W, H),
        I420Frame::new(W, H),
    );
    let (mut bytes, mut psnr) = (0usize, 0.0);
    for (n, f) in vp8.iter().enumerate() {
        src.frame(n, &mut input, &mut clean);
        let shown = dec.decode(f, &mut decoded).ok()?;
        if n >= WARMUP && shown {
            bytes += f.len();
            psnr += y_psnr(&input, &decoded);
        }
    }
    let nf = frames as f64;
    Some(PeerRow {
        name: format!("ffmpeg libvpx -cpu-used {speed} -static-thresh {static_thresh}"),
        cpu_ms: per_frame.iter().copied().fold(f64::MAX, f64::min),
        cpu_median_ms: median(&mut per_frame),
        kbps: bytes as f64 * 8.0 * f64::from(FPS) / nf / 1000.0,
        psnr: psnr / nf,
    })
}

// ---------------------------------------------------------------------------------------------

struct Cell {
    runs: Vec<Run>,
}

impl Cell {
    fn med(&self, f: impl Fn(&Run) -> f64) -> f64 {
        let mut v: Vec<f64> = self.runs.iter().map(f).collect();
        median(&mut v)
    }
    /// Mean over the frames of each frame's least CPU over the runs. At a fixed libvpx speed
    /// the encode is deterministic, so every run does the same work on frame `n`; a shared
    /// machine only ever adds time (preemption, cache and core contention), so the least of the
    /// runs is the best estimate of each frame's own cost.
    fn cpu_floor(&self) -> f64 {
        let n = self.runs.iter().map(|r| r.cpu_ms.len()).min().unwrap_or(0);
        if n == 0 {
            return f64::NAN;
        }
        (0..n)
            .map(|i| {
                self.runs
                    .iter()
                    .map(|r| r.cpu_ms[i])
                    .fold(f64::MAX, f64::min)
            })
            .sum::<f64>()
            / n as f64
    }
    fn spread(&self, f: impl Fn(&Run) -> f64) -> (f64, f64) {
        let v: Vec<f64> = self.runs.iter().map(f).collect();
        (
            v.iter().copied().fold(f64::MAX, f64::min),
            v.iter().copied().fold(f64::MIN, f64::max),
        )
    }
}

fn arg_value(args: &[String], name: &str) -> Option<usize> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let frames = arg_value(&args, "--frames").unwrap_or(300);
    let reps = arg_value(&args, "--reps").unwrap_or(5).max(1);
    let quick = args.iter().any(|a| a == "--quick");
    let mut scenes = vec![
        Scene::Moving,
        Scene::Still,
        Scene::StillNoisy(10),
        Scene::StillNoisy(20),
        Scene::StillPattern,
    ];
    scenes.extend((0..photo_paths().len()).map(Scene::Photo));
    let cands = match args.iter().position(|a| a == "--tunings") {
        Some(i) => parse_tunings(args.get(i + 1).map_or("", String::as_str)),
        None => candidates(quick),
    };
    println!(
        "still: {W}x{H} {FPS} fps {KBPS} kbit/s, cpu_used {}, {frames} frames (+{WARMUP} warm-up), \
         {reps} interleaved runs per cell, libvpx {}",
        cpu_used(),
        sutantra_core::codec::libvpx_version()
    );
    let mut cells: Vec<Vec<Cell>> = scenes
        .iter()
        .map(|_| cands.iter().map(|_| Cell { runs: Vec::new() }).collect())
        .collect();
    for rep in 0..reps {
        // Each run starts the scenes and the tunings at a different place, so a slow stretch of
        // the (shared) machine does not always fall on the same cells.
        for k in 0..scenes.len() {
            let si = (k + rep) % scenes.len();
            let scene = scenes[si];
            for j in 0..cands.len() {
                let ci = (j + rep) % cands.len();
                let c = &cands[ci];
                let r = encode_scene(scene, c, frames);
                println!(
                    "{{\"rep\":{rep},\"scene\":\"{}\",\"tuning\":\"{}\",\"static_threshold\":{},\"noise_sensitivity\":{},\"screen_content_mode\":{},\"cpu_ms_mean\":{:.4},\"cpu_ms_median\":{:.4},\"kbps\":{:.1},\"y_psnr_db\":{:.3},\"y_psnr_clean_db\":{:.3},\"dropped\":{}}}",
                    scene.name(),
                    c.name,
                    c.tuning.static_threshold,
                    c.tuning.noise_sensitivity,
                    c.tuning.screen_content_mode,
                    r.cpu_mean_ms,
                    r.cpu_median_ms,
                    r.kbps,
                    r.psnr,
                    r.psnr_clean,
                    r.dropped
                );
                cells[si][ci].runs.push(r);
            }
        }
    }

    // Today's tuning on the moving scene: the reference the still scenes are held against.
    let moving_today = cells[0][0].cpu_floor();
    println!();
    println!(
        "CPU ms/frame = thread CPU per encode call: mean over the frames of each frame's least \
         CPU over the {reps} runs (the ratios use it); runs = the runs' own means, median \
         [min-max]. \"vs today\" = against today's tuning on the same scene; \"vs moving\" = \
         against today's tuning on the moving scene ({moving_today:.3} ms) / against the same \
         tuning on the moving scene. PSNR = mean luma PSNR against the encoder's input \
         (still-noise*: / against the noise-free picture). dropped = frames libvpx did not \
         code."
    );
    println!();
    println!(
        "| scene | tuning | CPU ms/frame | runs: median [min-max] | vs today | vs moving | kbit/s | Y PSNR dB | dPSNR vs today | dropped |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (si, &scene) in scenes.iter().enumerate() {
        let today = &cells[si][0];
        let (t_cpu, t_psnr, t_clean) = (
            today.cpu_floor(),
            today.med(|r| r.psnr),
            today.med(|r| r.psnr_clean),
        );
        for (ci, c) in cands.iter().enumerate() {
            let cell = &cells[si][ci];
            let cpu = cell.cpu_floor();
            let mean = cell.med(|r| r.cpu_mean_ms);
            let (lo, hi) = cell.spread(|r| r.cpu_mean_ms);
            let psnr = cell.med(|r| r.psnr);
            let clean = cell.med(|r| r.psnr_clean);
            let noisy = matches!(scene, Scene::StillNoisy(_));
            let psnr_s = if noisy {
                format!("{psnr:.2} / {clean:.2}")
            } else {
                format!("{psnr:.2}")
            };
            let dpsnr_s = if noisy {
                format!("{:+.2} / {:+.2}", psnr - t_psnr, clean - t_clean)
            } else {
                format!("{:+.2}", psnr - t_psnr)
            };
            let moving_same = cells[0][ci].cpu_floor();
            println!(
                "| {} | {} | {cpu:.3} | {mean:.3} [{lo:.3}-{hi:.3}] | {:.2} | {:.2} / {:.2} | {:.0} | {psnr_s} | {dpsnr_s} | {} |",
                scene.name(),
                c.name,
                cpu / t_cpu,
                cpu / moving_today,
                cpu / moving_same,
                cell.med(|r| r.kbps),
                cell.runs.iter().map(|r| r.dropped).max().unwrap_or(0),
            );
        }
    }

    if std::env::var("BENCH_FFMPEG").as_deref() == Ok("0") {
        return;
    }
    println!();
    println!(
        "Peer, same run: ffmpeg's libvpx on the same frames (raw over a pipe; CPU per frame = \
         the child's user+sys minus a pass-through ffmpeg's on the same input; least of \
         {reps} runs, and their median)."
    );
    println!();
    println!("| scene | encoder | CPU ms/frame | runs: median | kbit/s | Y PSNR dB |");
    println!("|---|---|---:|---:|---:|---:|");
    let chosen = Vp8Tuning::default().static_threshold;
    let mut thresholds = vec![0, 1];
    if !thresholds.contains(&chosen) {
        thresholds.push(chosen);
    }
    let mut peer_scenes = vec![Scene::Moving, Scene::Still];
    peer_scenes.extend((0..photo_paths().len()).map(Scene::Photo));
    for scene in peer_scenes {
        for &st in &thresholds {
            match ffmpeg_peer(scene, frames, st, reps) {
                Some(p) => println!(
                    "| {} | {} | {:.3} | {:.3} | {:.0} | {:.2} |",
                    scene.name(),
                    p.name,
                    p.cpu_ms,
                    p.cpu_median_ms,
                    p.kbps,
                    p.psnr
                ),
                None => println!(
                    "| {} | ffmpeg (not run: see stderr) | - | - | - | - |",
                    scene.name()
                ),
            }
        }
    }
}
