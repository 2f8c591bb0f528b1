//! The media path in process: libvpx VP8 encode (the node's encoder settings: realtime,
//! cpu-used 8, one thread, CBR) and RFC 7741 packetization, per frame, at 640x480 1 Mbit/s and
//! 1280x720 2.5 Mbit/s.
//!
//! Frames come from a Y4M file when `BENCH_Y4M_<W>x<H>` names one (bench/run.sh passes the same
//! files it feeds the node, ffmpeg and aiortc with), otherwise from the test pattern. 60 frames
//! are read into memory first and encoded in a loop, so only encode and packetize are timed.
//! The peer is ffmpeg's libvpx on the same frames, measured by bench/run.sh in the same run.
//!
//! Run: `cargo bench -p sutantra-core --bench media [-- FRAMES]` (plain `main`; prints one JSON
//! line per size and a markdown table).

// A benchmark has to read the clock (node-core's clippy.toml forbids it in the library).
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use sutantra_core::codec::{Vp8Config, Vp8Decoder, Vp8Encoder};
use sutantra_core::rtp::packetizer::Packetizer;
use sutantra_hal::{FixedClock, FrameSource, I420Frame, TestPattern, Y4mSource};

const RING: usize = 60;

struct Row {
    size: String,
    source: &'static str,
    frames: usize,
    encode: Duration,
    packetize: Duration,
    bytes: usize,
    packets: usize,
    /// Mean over the frames of each decoded picture's PSNR against its source (Y, U and V
    /// together), dB: the quality the encode time buys.
    psnr_db: f64,
}

/// PSNR of `b` against `a` over all bytes (8-bit samples); 99 dB for identical pictures.
fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let se: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| u64::from(x.abs_diff(y)).pow(2))
        .sum();
    if se == 0 {
        return 99.0;
    }
    let mse = se as f64 / a.len() as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

fn frames(w: u32, h: u32) -> (Vec<I420Frame>, &'static str) {
    let var = format!("BENCH_Y4M_{w}x{h}");
    let mut src: Box<dyn FrameSource> = match std::env::var(&var) {
        Ok(path) => Box::new(Y4mSource::open(path.as_ref()).expect("open the Y4M file")),
        Err(_) => Box::new(TestPattern::new(w, h, 30, 1).expect("test pattern")),
    };
    let kind = src.info().kind;
    assert_eq!(
        (src.info().width, src.info().height),
        (w, h),
        "{var}: wrong size"
    );
    let ring = (0..RING)
        .map(|i| {
            let mut f = I420Frame::new(w, h);
            src.capture(
                &mut f,
                &FixedClock(1_700_000_000_000_000 + i as u64 * 33_333),
            )
            .expect("capture");
            f
        })
        .collect();
    (ring, kind)
}

/// The libvpx speed: the node's default, or `BENCH_CPU_USED` (bench/run.sh's speed sweep).
fn cpu_used() -> i32 {
    std::env::var("BENCH_CPU_USED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(Vp8Config::default().cpu_used)
}

fn measure(w: u32, h: u32, kbps: u32, n: usize) -> Row {
    let (ring, source) = frames(w, h);
    let cfg = Vp8Config {
        width: w,
        height: h,
        bitrate_kbps: kbps,
        cpu_used: cpu_used(),
        ..Vp8Config::default()
    };
    let mut enc = Vp8Encoder::new(&cfg).expect("encoder");
    let mut pk = Packetizer::new(1200, 1, 2, 3).expect("packetizer");
    let (mut t_enc, mut t_pk, mut bytes, mut packets) = (Duration::ZERO, Duration::ZERO, 0, 0);
    let mut payload = Vec::with_capacity(256 * 1024);
    let mut decoder = Vp8Decoder::new().expect("decoder");
    let mut decoded = I420Frame::new(w, h);
    let mut psnr_sum = 0.0;
    for i in 0..n + 10 {
        let t0 = Instant::now();
        let e = enc.encode(&ring[i % RING], i == 0).expect("encode");
        payload.clear();
        payload.extend_from_slice(e.data);
        let t1 = Instant::now();
        let mut count = 0;
        pk.packetize(&payload, i as u64 * 33_333, |p| {
            count += 1;
            std::hint::black_box(p.payload);
        });
        let t2 = Instant::now();
        if i >= 10 {
            // the first 10 frames warm up (first keyframe, rate control)
            t_enc += t1 - t0;
            t_pk += t2 - t1;
            bytes += payload.len();
            packets += count;
        }
        // Outside the timed part: what a viewer would see (decoded from the first keyframe on).
        if decoder.decode(&payload, &mut decoded).expect("decode") && i >= 10 {
            psnr_sum += psnr(ring[i % RING].data(), decoded.data());
        }
    }
    Row {
        size: format!("{w}x{h}"),
        source,
        frames: n,
        encode: t_enc,
        packetize: t_pk,
        bytes,
        packets,
        psnr_db: psnr_sum / n as f64,
    }
}

fn main() {
    let n = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(300);
    let rows = [(640, 480, 1000), (1280, 720, 2500)].map(|(w, h, k)| measure(w, h, k, n));
    for r in &rows {
        println!(
            "{{\"size\":\"{}\",\"source\":\"{}\",\"frames\":{},\"encode_ms\":{:.4},\"packetize_us\":{:.3},\"bytes_per_frame\":{},\"packets_per_frame\":{:.2},\"psnr_db\":{:.2},\"cpu_used\":{}}}",
            r.size,
            r.source,
            r.frames,
            r.encode.as_secs_f64() * 1e3 / r.frames as f64,
            r.packetize.as_secs_f64() * 1e6 / r.frames as f64,
            r.bytes / r.frames,
            r.packets as f64 / r.frames as f64,
            r.psnr_db,
            cpu_used(),
        );
    }
    println!();
    println!(
        "| size | source | encode (ms/frame) | packetize (us/frame) | bytes/frame | packets/frame | PSNR (dB) |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.1} | {} | {:.1} | {:.2} |",
            r.size,
            r.source,
            r.encode.as_secs_f64() * 1e3 / r.frames as f64,
            r.packetize.as_secs_f64() * 1e6 / r.frames as f64,
            r.bytes / r.frames,
            r.packets as f64 / r.frames as f64,
            r.psnr_db,
        );
    }
}
