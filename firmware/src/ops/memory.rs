//! Memory that comes back: freed heap is handed back to the kernel after viewers come and go.
//!
//! What held it (measured with `bench/churn.py`, a release build, 640x480, one steady viewer):
//! 300 viewer sessions, a third of them aborted, took resident memory from 24.0 to 36.9 MiB, and
//! it stayed there. The sessions' allocations were freed (nothing grew once they had gone), but
//! glibc's malloc keeps freed memory in its arenas: a peer connection allocates a few hundred
//! KiB in small pieces on whichever thread served it, and the holes they leave are neither at
//! the top of a heap (which free trims by itself) nor whole mappings. `malloc_trim` walks the
//! arenas and returns every free page: 36.0 -> 25.9 MiB once the sessions had gone. The WHEP
//! sessions used to call it only when the last session ended, which never happens while one
//! viewer watches all day; this task is now the only caller. With `GLIBC_TUNABLES` alone nothing came back: one arena (34 MiB), two (37),
//! a fixed 128 KiB mmap and trim threshold (37).
//!
//! So this task trims after churn: at most once per [`TRIM_EVERY`], and only when sessions were
//! opened or ended, or HTTP connections accepted (a `/metrics` scrape counts), since the last
//! trim (a steady stream allocates little and is never walked).
//! One walk of a 25-35 MiB heap costs about a millisecond of one core. That alone brought 300
//! sessions back to 27.5 MiB: the rest was pages pinned by small allocations that outlived the
//! sessions among their freed pieces, spread over a dozen per-thread arenas. heaptrack named
//! them: almost all were the log ring's lines (the stack warns a few times per session). So
//! the ring now keeps its lines in one buffer allocated at start (`ops::control::logging`), and
//! [`one_arena`] keeps all threads in glibc's main arena. The ring's buffer is written at start, so that
//! its pages count from the first second rather than appear as growth once it has filled.
//! Measured with one viewer at 23.9 MiB: after 1000 sessions 25.6-25.7 MiB (peak 33.5-33.7),
//! back within 12 s of the churn's end; the steady viewer kept 30 fps. The 1.7-1.8 MiB left
//! are heap pages that still hold a live piece each (BENCHMARKS.md).

use crate::stats::Stats;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Shortest time between two trims.
pub const TRIM_EVERY: Duration = Duration::from_secs(3);

/// Session churn so far: every session opened, joined, abandoned or refused, and every HTTP
/// connection accepted (an aborted POST allocates buffers too).
fn churn(stats: &Stats) -> u64 {
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    c(&stats.viewers_joined)
        .wrapping_add(c(&stats.sessions_abandoned))
        .wrapping_add(c(&stats.viewers_refused))
        .wrapping_add(c(&stats.http.connections_accepted))
        .wrapping_add(stats.viewers.load(Ordering::Relaxed) as u64)
}

/// Trims the heap every [`TRIM_EVERY`] while sessions come and go; runs until aborted.
pub async fn trim_after_churn(stats: Arc<Stats>) {
    let mut seen = churn(&stats);
    let mut tick = tokio::time::interval(TRIM_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = churn(&stats);
        if now != seen {
            seen = now;
            // Off the async workers: the walk takes the allocator's locks.
            let _ = tokio::task::spawn_blocking(release_free_memory).await;
        }
    }
}

/// Keeps every thread's allocations in glibc's main arena. By default each thread that meets
/// a locked arena gets one of its own (up to 8 per core), and a session's pieces spread over
/// them; what outlives the session (a log line, a grown map) then pins a page in each. Call it
/// before the runtime's threads start.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; M_ARENA_MAX takes effect for
    // threads that have not allocated yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the allocator's free pages back to the kernel (glibc; a no-op elsewhere).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the process's own malloc arenas; it takes
    // the allocator's locks like any allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}
