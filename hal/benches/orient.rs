//! The node's own flip (`camera::orient::apply`, used when a camera cannot flip the picture
//! itself), per frame at 640x480 and 1280x720, for each of hflip, vflip and rotation 180; beside
//! a plain copy of the frame (`I420Frame::clone_from`), the floor any flip pays.
//!
//! Run: `cargo bench -p sutantra-hal --bench orient [-- RUNS]` (plain `main`; prints a markdown
//! table of median microseconds per frame).

use std::hint::black_box;
use std::time::Instant;

use sutantra_hal::I420Frame;
use sutantra_hal::camera::orient::{Orientation, apply};

fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..10 {
        f();
    }
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(300);
    println!("| size | copy (floor) | hflip | vflip | rotation 180 |");
    println!("|---|---:|---:|---:|---:|");
    for (w, h) in [(640u32, 480u32), (1280, 720)] {
        let mut frame = I420Frame::new(w, h);
        for (i, b) in frame.data_mut().iter_mut().enumerate() {
            *b = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
        }
        let source = frame.clone();
        let copy = median_us(runs, || frame.clone_from(black_box(&source)));
        let mut row = format!("| {w}x{h} | {copy:.0} µs |");
        for (hflip, vflip) in [(true, false), (false, true), (true, true)] {
            let o = Orientation { hflip, vflip };
            let us = median_us(runs, || apply(black_box(&mut frame), o));
            row.push_str(&format!(" {us:.0} µs |"));
        }
        println!("{row}");
    }
}
