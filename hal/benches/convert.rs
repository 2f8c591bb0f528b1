//! The camera pixel-format converters (`camera::convert`), per frame, for every source format at
//! 640x480 and 1280x720: once with rows exactly a row apart (what most cameras deliver at these
//! widths) and once with padded rows (64 bytes more per row), which takes the row-by-row paths.
//!
//! Each case converts a frame of a fixed pseudo-random pattern 300 times (after a few warm-up
//! runs) and reports the median time. Every case also prints a checksum of what it wrote, and a
//! last table hashes the outputs and errors of many small odd sizes, strides and lengths, so two
//! versions of the module can be shown to produce the same bytes.
//!
//! Run: `cargo bench -p sutantra-hal --bench convert [-- RUNS]` (plain `main`; prints markdown
//! tables).

use std::hint::black_box;
use std::time::Instant;

use sutantra_hal::I420Frame;
use sutantra_hal::camera::convert::PixelFormat;

const RUNS: usize = 300;
const WARMUP: usize = 10;
const SIZES: [(u32, u32); 2] = [(640, 480), (1280, 720)];
/// Extra bytes per row in the padded case.
const PAD: usize = 64;

/// FNV-1a, 64 bits: enough to tell two outputs apart, no dependency.
fn fnv(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// A deterministic pseudo-random picture (a 32-bit LCG's high bytes).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect()
}

/// Bytes a picture of this format needs with rows `stride` apart (generously: every plane
/// padded to full rows).
fn src_len(format: PixelFormat, stride: usize, height: u32) -> usize {
    let h = height as usize;
    let ch = h.div_ceil(2);
    match format {
        PixelFormat::Yu12 | PixelFormat::Yv12 => stride * h + 2 * stride.div_ceil(2) * ch,
        PixelFormat::Nv12 | PixelFormat::Nv21 => stride * h + stride * ch,
        PixelFormat::Yuyv | PixelFormat::Uyvy | PixelFormat::Yvyu => stride * h,
    }
}

/// Median nanoseconds per conversion and the checksum of the output.
fn time(format: PixelFormat, width: u32, height: u32, stride: usize, runs: usize) -> (u64, u64) {
    let src = pattern(src_len(format, stride, height), 0x5eed ^ width ^ height);
    let mut dst = I420Frame::new(width, height);
    for _ in 0..WARMUP {
        format
            .to_i420(black_box(&src), stride, width, height, &mut dst)
            .expect("convert");
    }
    let mut times: Vec<u64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            format
                .to_i420(black_box(&src), stride, width, height, black_box(&mut dst))
                .expect("convert");
            u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
        })
        .collect();
    times.sort_unstable();
    let median = times.get(times.len() / 2).copied().unwrap_or(0);
    (median, fnv(FNV_START, dst.data()))
}

/// Hashes the outcome (output bytes or error message) of every small case: widths 1-10,
/// heights 1-7, strides from below a row to a few bytes past it, buffers from empty to long
/// enough, destinations of the right and a wrong size.
fn edge_checksum(format: PixelFormat) -> (u64, usize, usize) {
    let mut hash = FNV_START;
    let (mut ok, mut err) = (0, 0);
    let src = pattern(4096, 77);
    for width in 0..=10u32 {
        for height in 0..=7u32 {
            let min = format.min_stride(width);
            for stride in min.saturating_sub(1)..=min + 3 {
                let full = src_len(format, stride, height);
                for len in [0, full / 2, full.saturating_sub(1), full, full + 5] {
                    for dst_w in [width, width + 1] {
                        let mut dst = I420Frame::new(dst_w.max(1), height.max(1));
                        dst.data_mut().fill(0xEE);
                        let Some(src) = src.get(..len) else { continue };
                        match format.to_i420(src, stride, width, height, &mut dst) {
                            Ok(()) => {
                                ok += 1;
                                hash = fnv(hash, dst.data());
                            }
                            Err(e) => {
                                err += 1;
                                hash = fnv(hash, e.to_string().as_bytes());
                            }
                        }
                    }
                }
            }
        }
    }
    // Impossible sizes: a stride that overflows the picture size.
    let mut dst = I420Frame::new(4, 2);
    for stride in [usize::MAX / 2, usize::MAX / 3, usize::MAX] {
        if let Err(e) = format.to_i420(&src, stride, 4, 2, &mut dst) {
            err += 1;
            hash = fnv(hash, e.to_string().as_bytes());
        }
    }
    (hash, ok, err)
}

fn main() {
    let runs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(RUNS);
    println!("convert to I420, median of {runs} runs, ns per frame\n");
    println!(
        "| format | size | ns/frame (stride = row) | ns/frame (padded +{PAD}) | checksum (row) | checksum (padded) |"
    );
    println!("|---|---|---:|---:|---|---|");
    for (width, height) in SIZES {
        for format in PixelFormat::PREFERENCE {
            let min = format.min_stride(width);
            let (tight, tight_sum) = time(format, width, height, min, runs);
            let (padded, padded_sum) = time(format, width, height, min + PAD, runs);
            println!(
                "| {format} | {width}x{height} | {tight} | {padded} | {tight_sum:016x} | {padded_sum:016x} |"
            );
        }
    }
    println!("\nsmall and odd cases (outputs and error messages hashed)\n");
    println!("| format | ok | errors | checksum |");
    println!("|---|---:|---:|---|");
    for format in PixelFormat::PREFERENCE {
        let (hash, ok, err) = edge_checksum(format);
        println!("| {format} | {ok} | {err} | {hash:016x} |");
    }
}
