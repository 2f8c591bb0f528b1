//! `I420Frame::new_unfilled`: frames that are never written cost no resident memory (the frame
//! pool relies on it).
//!
//! A test binary of its own: RSS is the whole process's, and the library's unit tests (libvpx
//! encoders, light clients of 1000 validators) allocate and free tens of MiB in parallel, which
//! both adds noise and moves glibc's mmap threshold, so the frames would no longer get fresh,
//! untouched pages.

// Reads /proc/self/status to measure memory; the crate itself does no I/O.
#![allow(clippy::disallowed_methods)]

use sutantra_core::frame::I420Frame;

/// Resident set size of this process in KiB (Linux; `VmRSS` is in kB whatever the page size,
/// where `statm` counts pages of 4, 16 or 64 KiB).
#[cfg(target_os = "linux")]
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// 64 MiB of unfilled 720p frames must add far less than that.
#[cfg(target_os = "linux")]
#[test]
fn unfilled_frames_are_not_resident_until_written() {
    let before = rss_kib();
    let frames: Vec<I420Frame> = (0..48)
        .map(|_| I420Frame::new_unfilled(1280, 720))
        .collect();
    let grew = rss_kib().saturating_sub(before);
    assert!(
        grew < 16 * 1024,
        "48 unfilled 720p frames (64 MiB) made RSS grow by {grew} KiB"
    );
    drop(frames);
}
