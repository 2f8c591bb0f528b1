//! Light-client verification cost: throughput (headers/s) and peak heap of one `verify_step`,
//! and of parsing the block's JSON, for validator sets of 4, 100 and 1000 Ed25519 validators.
//!
//! The blocks are built and signed here (`support/chain_gen.rs`: fixed-seed keys, real header
//! hashes, precommit signatures over the canonical vote bytes), all validators of equal power
//! and all signing, so an adjacent step checks the `floor(2n/3) + 1` signatures that first pass
//! 2/3 of the power (the verifier stops there), and a skipping step (trusted height 1 -> 11,
//! same set) checks `floor(n/3) + 1` of the trusted set, then reuses those to reach 2/3.
//! Peak heap is measured with a counting global allocator: the most bytes live at once during
//! the call, above what was live before it.
//!
//! Run: `cargo bench -p sutantra-chain --bench verify` (plain `main`, prints a markdown table).

// node-core's clippy.toml forbids reading the clock (the core is sans-I/O). A benchmark has to
// measure wall time, and this file is a bench target, not part of the library.
#![allow(clippy::disallowed_methods)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sutantra_chain::light::{
    LightBlock, TrustedState, Verdict, VerifyOptions, parse_light_block, verify_step,
};

#[path = "support/chain_gen.rs"]
mod chain_gen;

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grow = new_size - layout.size();
                let live = LIVE.fetch_add(grow, Ordering::Relaxed) + grow;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap bytes above the starting level while `f` runs.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed).saturating_sub(base))
}

/// Runs `f` repeatedly for at least `budget` (and 3 times); calls per second.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while n < 3 || start.elapsed() < budget {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

struct Row {
    n: usize,
    json_kib: f64,
    parse_per_s: f64,
    parse_heap: usize,
    adj_per_s: f64,
    adj_heap: usize,
    skip_per_s: f64,
    skip_heap: usize,
}

fn measure(n: usize, budget: Duration) -> Row {
    let vals = chain_gen::validators(n as u32, n, 10);
    let refs: Vec<&chain_gen::Validator> = vals.iter().collect();
    let b1 = chain_gen::block("sutantra-bench", 1, &refs, &refs, &chain_gen::all);
    let b2 = chain_gen::block("sutantra-bench", 2, &refs, &refs, &chain_gen::all);
    let b11 = chain_gen::block("sutantra-bench", 11, &refs, &refs, &chain_gen::all);
    let trusted = TrustedState::try_from(&b1).expect("trusted state");
    let opts = VerifyOptions {
        trust_threshold: (1, 3),
        trusting_period: Duration::from_secs(24 * 3600),
        clock_drift: Duration::from_secs(10),
    };
    let now = chain_gen::time_at(720);

    let json = serde_json::to_vec(&b2).expect("serialize the light block");
    let (parsed, parse_heap) = peak_heap(|| parse_light_block(&json));
    let parsed: LightBlock = parsed.expect("the block parses");
    assert_eq!(
        verify_step(&trusted, &parsed, &opts, now),
        Verdict::Success,
        "the parsed block verifies"
    );
    let parse_per_s = rate(budget, || {
        std::hint::black_box(parse_light_block(std::hint::black_box(&json)).is_ok());
    });

    let step = |b: &LightBlock| verify_step(&trusted, b, &opts, now);
    let (v, adj_heap) = peak_heap(|| step(&b2));
    assert_eq!(v, Verdict::Success, "adjacent step verifies");
    let adj_per_s = rate(budget, || {
        std::hint::black_box(step(std::hint::black_box(&b2)));
    });
    let (v, skip_heap) = peak_heap(|| step(&b11));
    assert_eq!(v, Verdict::Success, "skipping step verifies");
    let skip_per_s = rate(budget, || {
        std::hint::black_box(step(std::hint::black_box(&b11)));
    });

    Row {
        n,
        json_kib: json.len() as f64 / 1024.0,
        parse_per_s,
        parse_heap,
        adj_per_s,
        adj_heap,
        skip_per_s,
        skip_heap,
    }
}

fn kib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

#[allow(
    clippy::disallowed_methods,
    reason = "the benchmark reports the CPU model; the crate itself does no I/O"
)]
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

fn main() {
    // `cargo bench` passes `--bench`; a number of seconds per measurement may follow.
    let budget = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<f64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs_f64);
    let rows: Vec<Row> = [4usize, 100, 1000]
        .into_iter()
        .map(|n| measure(n, budget))
        .collect();

    println!();
    println!("Light-client verification, `cargo bench -p sutantra-chain --bench verify`");
    println!(
        "({}, {} logical CPUs, single thread; ed25519-compact signatures, sha2 hashing)",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!();
    println!(
        "| validators | sigs checked (adjacent) | adjacent verify_step (headers/s) | peak heap (KiB) | skipping 1->11 (headers/s) | peak heap (KiB) | block JSON (KiB) | parse_light_block (blocks/s) | parse peak heap (KiB) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {} | {:.1} | {} | {:.1} | {:.1} | {} |",
            r.n,
            2 * r.n / 3 + 1,
            r.adj_per_s,
            kib(r.adj_heap),
            r.skip_per_s,
            kib(r.skip_heap),
            r.json_kib,
            r.parse_per_s,
            kib(r.parse_heap),
        );
    }
}
