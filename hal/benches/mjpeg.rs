//! MJPEG decoding (`camera::mjpeg`) per frame: the committed 640x480 4:2:2 test frame
//! (`hal/tests/data/mjpeg/422_640x480.jpg`, ffmpeg `testsrc2` at `-q:v 5`, about 27 KB, close to
//! what a webcam sends at that size), with its Huffman tables and without (the standard tables
//! inserted, as for most webcams), decoded to I420 300 times after a few warm-up runs; prints the
//! median and the checksum of the output.
//!
//! Run: `cargo bench -p sutantra-hal --bench mjpeg [-- RUNS]` (plain `main`).

use std::hint::black_box;
use std::time::Instant;

use sutantra_hal::I420Frame;
use sutantra_hal::camera::mjpeg::MjpegDecoder;

const WARMUP: usize = 10;

/// The frame with its DHT segment removed: what a webcam without tables sends.
fn without_tables(jpeg: &[u8]) -> Vec<u8> {
    let mut at = 2;
    while at + 4 <= jpeg.len() {
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if jpeg[at + 1] == 0xC4 {
            let mut out = jpeg[..at].to_vec();
            out.extend_from_slice(&jpeg[at + 2 + len..]);
            return out;
        }
        at += 2 + len;
    }
    jpeg.to_vec()
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/mjpeg/422_640x480.jpg"
    );
    let jpeg = std::fs::read(path).expect("the committed test frame");
    let mut decoder = MjpegDecoder::new(640, 480).expect("decoder");
    let mut frame = I420Frame::new(640, 480);
    println!("| frame | bytes | median per frame | checksum |\n|---|---|---|---|");
    for (name, data) in [
        ("640x480 4:2:2, with DHT", jpeg.clone()),
        ("640x480 4:2:2, no DHT", without_tables(&jpeg)),
    ] {
        let mut times = Vec::with_capacity(runs);
        for n in 0..WARMUP + runs {
            let start = Instant::now();
            decoder
                .decode(black_box(&data), &mut frame)
                .expect("decodes");
            if n >= WARMUP {
                times.push(start.elapsed());
            }
        }
        times.sort();
        let sum = frame.data().iter().fold(0u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        println!(
            "| {name} | {} | {:.3} ms | {sum:016x} |",
            data.len(),
            times[times.len() / 2].as_secs_f64() * 1e3
        );
    }
}
