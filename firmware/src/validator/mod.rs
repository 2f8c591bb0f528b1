//! The light validator in the running node: wiring and shutdown of its three threads.
//!
//! `sutantra run` with a `[chain]` starts here: the chain thread ([`crate::validator::chain::sync`]), the
//! attestation thread and the submitter ([`crate::validator::attest`]), all on plain OS threads (blocking
//! HTTP and fsync'd commits never touch the tokio runtime that serves viewers), and hands the
//! media path the segment observer. Shutdown order matters for "nothing committed is lost and
//! the last segment is attested": the media threads stop first (dropping the observer flushes the
//! open segment), then the attestation thread drains its channel and exits, then the chain and
//! submitter threads are told to stop; last, the trusted state still waiting for its write
//! (the store is written on a budget, see [`crate::validator::chain::persist`]) is written, in
//! case the chain thread was still inside an RPC call.
//!
//! The chain side cannot take the video down. The node key and the store are opened here, by the
//! attestation thread, not by the node: [`LightValidator::launch`] fails only for a `[chain]`
//! setting the configuration should have refused. A key that cannot be used (open to others,
//! damaged, unreadable), a store that cannot be opened (damaged, full disk, another chain) or a
//! failure to start a thread is reported as the chain's last error (`/healthz` `chain_error`,
//! `sutantra status`) and logged, the segments closed meanwhile are counted as unanchored, and the
//! opening is tried again every [`OPEN_RETRY`]; the camera streams all along. A panic in a
//! validator thread (a third-party library on a damaged file) is contained to that thread
//! ([`run_contained`]): the thread stops, the error is reported the same way, and the process goes
//! on.
//!
//! A store that fails once open (a full data disk) stops nothing either: the store reopens
//! itself after the I/O error (see [`store`]), the attester counts the segments it cannot store
//! as lost, the submitter and the chain thread retry, and the store's error is the chain's last
//! error until a write succeeds again.

pub mod attest;
pub mod chain;
pub mod keys;
pub mod store;

use crate::config::Config;
use crate::stats::Stats;
use crate::validator::attest::runtime::{Attester, SEGMENT_CHANNEL, SegmentObserver};
use crate::validator::attest::submit::Submitter;
use crate::validator::chain::ChainShared;
use crate::validator::chain::persist::{TrustedWriter, Wrote};
use crate::validator::chain::rpc::RpcClient;
use crate::validator::chain::sync::{SyncConfig, Syncer};
use crate::validator::store::Store;
use ed25519_compact::KeyPair;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sutantra_chain::attest::{Segment, SegmentBuilder, SegmentConfig};
use sutantra_chain::light::{ParseLimits, VerifyOptions};
use sutantra_core::observer::FrameObserver;

/// Timeout of one RPC call (connect + request + body).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed attempt to open the node key and the store, the next one comes this much
/// later (an operator's `chmod 600`, a freed disk or a moved-away store is picked up without a
/// restart).
pub const OPEN_RETRY: Duration = Duration::from_secs(30);
/// How long [`LightValidator::launch`] waits for the first attempt before the node goes on with
/// the video (the attempt itself goes on).
const FIRST_OPEN_WAIT: Duration = Duration::from_secs(5);

/// The running light validator.
#[derive(Debug)]
pub struct LightValidator {
    shared: Arc<ChainShared>,
    attest: Option<JoinHandle<()>>,
    attest_parked: Arc<AtomicBool>,
    others: Arc<Mutex<Vec<JoinHandle<()>>>>,
    writer: WriterSlot,
    data_dir: PathBuf,
}

/// The chain thread's [`TrustedWriter`], once the store is open (for the flush at shutdown).
type WriterSlot = Arc<Mutex<Option<Arc<TrustedWriter>>>>;

/// The verifier options from `[chain]` (validated by the configuration).
pub fn verify_options(cfg: &Config) -> VerifyOptions {
    VerifyOptions {
        trust_threshold: cfg.chain.trust_level(),
        trusting_period: Duration::from_secs(cfg.chain.trusting_period_s),
        clock_drift: Duration::from_secs(cfg.chain.clock_drift_s),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| format!("cannot start the {name} thread: {e}"))
}

/// Everything the validator needs that comes from the configuration alone (no file opened).
#[derive(Debug, Clone)]
struct Plan {
    data_dir: PathBuf,
    chain_id: String,
    trust_root: String,
    sync: SyncConfig,
    rpcs: Vec<RpcClient>,
    stream_id: String,
    outbox_capacity: usize,
    retry: (Duration, Duration),
    primary: String,
    segment_ms: u64,
    /// Time between attempts to open the key and the store.
    open_retry: Duration,
}

impl Plan {
    fn from_config(cfg: &Config) -> Result<Self, String> {
        let c = &cfg.chain;
        let trust_hash: [u8; 32] = c
            .trust_hash_bytes()
            .try_into()
            .map_err(|_| "chain.trust_hash: not 32 bytes of hex".to_string())?;
        let opts = verify_options(cfg);
        opts.validate()
            .map_err(|e| format!("[chain] trust_level / trusting_period_s: {e}"))?;
        let limits = ParseLimits {
            // Each response, and each validator set with all its pages, is bounded by
            // max_response_bytes on the wire; the assembled light block holds two sets.
            max_bytes: usize::try_from(c.max_response_bytes)
                .unwrap_or(usize::MAX)
                .max(16 * 1024 * 1024),
            max_validators: c.max_validators,
        };
        Ok(Self {
            data_dir: cfg.data_dir.clone(),
            chain_id: c.chain_id.clone(),
            trust_root: format!("{}:{}", c.trust_height, hex::encode_upper(trust_hash)),
            sync: SyncConfig {
                chain_id: c.chain_id.clone(),
                trust_height: c.trust_height,
                trust_hash,
                headers_kept: c.headers_kept,
                persist_interval: Duration::from_secs(c.persist_interval_s.max(1)),
                poll_interval: Duration::from_millis(c.poll_interval_ms),
                opts,
                limits,
            },
            rpcs: c
                .rpc
                .iter()
                .map(|u| RpcClient::new(u, c.max_response_bytes, RPC_TIMEOUT))
                .collect(),
            stream_id: cfg.attest.stream_id.clone(),
            outbox_capacity: cfg.attest.outbox_capacity,
            retry: (
                Duration::from_millis(cfg.attest.retry_min_ms),
                Duration::from_millis(cfg.attest.retry_max_ms),
            ),
            primary: c.rpc.first().cloned().unwrap_or_default(),
            segment_ms: cfg.attest.segment_ms,
            open_retry: OPEN_RETRY,
        })
    }
}

/// What opening the key and the store gives.
struct Opened {
    key: KeyPair,
    store: Arc<Store>,
    syncer: Syncer,
}

/// Opens the node key (creating it on the first start) and the store, binds the store to the
/// chain and loads the trusted state. Every error names the file and the fix.
fn open(plan: &Plan, stats: &Arc<Stats>, shared: &Arc<ChainShared>) -> Result<Opened, String> {
    let (key, created) = keys::load_or_create(&plan.data_dir).map_err(|e| e.to_string())?;
    tracing::info!(
        node_id = %sutantra_chain::attest::node_id(&key.pk),
        created,
        "node key"
    );
    // Holding the store marks this data dir as in use by a running node.
    let mut store =
        Store::open(&plan.data_dir, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    // Failures later on (a full disk) are counted, shown and recovered from by the store.
    store.report_to(stats.clone());
    store::write_pid_file(&plan.data_dir);
    // The file's size is bounded by the store's bounds; free space left by a re-root or smaller
    // bounds is given back here, the one time the node holds the store alone.
    match store.compact_if_sparse() {
        Ok(c) if c.compacted => tracing::info!(
            before_bytes = c.before,
            after_bytes = c.after,
            used_bytes = c.used,
            "store compacted"
        ),
        Ok(c) => tracing::info!(file_bytes = c.before, used_bytes = c.used, "store opened"),
        // Not fatal: the store works as it is.
        Err(e) => tracing::warn!(error = %e, "the store could not be compacted"),
    }
    let store = Arc::new(store);
    if store
        .bind_chain(&plan.chain_id, &plan.trust_root)
        .map_err(|e| e.to_string())?
    {
        tracing::warn!(trust_root = %plan.trust_root,
            "the trust root changed: the stored trusted blocks were dropped; bootstrapping");
    }
    let meta = store.meta().map_err(|e| e.to_string())?;
    let cs = &stats.chain;
    cs.outbox_dropped
        .store(meta.outbox_dropped, Ordering::Relaxed);
    cs.outbox_depth.store(
        store.pending_count().map_err(|e| e.to_string())?,
        Ordering::Relaxed,
    );
    let syncer = Syncer::new(
        plan.sync.clone(),
        plan.rpcs.clone(),
        store.clone(),
        stats.clone(),
        shared.clone(),
    )?;
    Ok(Opened { key, store, syncer })
}

impl LightValidator {
    /// Starts the light validator and returns it with the observer for the encode thread.
    ///
    /// Fails only for a `[chain]` setting that cannot work (which the configuration refuses
    /// first). The key and the store are opened by the attestation thread; this waits a little
    /// for that first attempt (so a healthy start logs in its usual order), and a failure is
    /// reported and retried there (see the module header), never returned.
    pub fn launch(
        cfg: &Config,
        stats: Arc<Stats>,
    ) -> Result<(Self, Box<dyn FrameObserver>), String> {
        Self::launch_retrying(cfg, stats, OPEN_RETRY)
    }

    fn launch_retrying(
        cfg: &Config,
        stats: Arc<Stats>,
        open_retry: Duration,
    ) -> Result<(Self, Box<dyn FrameObserver>), String> {
        let mut plan = Plan::from_config(cfg)?;
        plan.open_retry = open_retry;
        let builder = SegmentBuilder::new(SegmentConfig {
            segment_us: plan.segment_ms.saturating_mul(1000),
            queue_capacity: 8,
        })
        .map_err(|e| e.to_string())?;
        stats.chain.enabled.store(true, Ordering::Relaxed);
        let shared = Arc::new(ChainShared::new());
        let others = Arc::new(Mutex::new(Vec::new()));
        let writer: WriterSlot = Arc::default();
        let attest_parked = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::sync_channel(SEGMENT_CHANNEL);
        let (first_tx, first_rx) = std::sync::mpsc::sync_channel(1);
        let thread = {
            let (stats, shared, others) = (stats.clone(), shared.clone(), others.clone());
            let parked = attest_parked.clone();
            let writer = writer.clone();
            spawn("attest", move || {
                let _watch =
                    PanicWatch::arm("attestation", Some(stats.clone()), parked, Arc::default());
                let threads = Threads {
                    others: &others,
                    writer: &writer,
                };
                attest_main(&plan, &stats, &shared, &threads, rx, first_tx);
            })?
        };
        let deadline = Instant::now() + FIRST_OPEN_WAIT;
        loop {
            match first_rx.recv_timeout(Duration::from_millis(20)) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout)
                    if Instant::now() >= deadline || attest_parked.load(Ordering::SeqCst) =>
                {
                    break;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        let me = Self {
            shared,
            attest: Some(thread),
            attest_parked,
            others,
            writer,
            data_dir: cfg.data_dir.clone(),
        };
        Ok((me, Box::new(SegmentObserver::new(builder, tx, stats))))
    }

    /// Stops after the media threads have (their observer is dropped): waits for the
    /// attestation thread to commit the last segment, then stops the chain and submitter
    /// threads, waiting a bounded time for an RPC call in flight.
    pub fn shutdown(mut self) {
        if let Some(t) = self.attest.take() {
            if self.attest_parked.load(Ordering::SeqCst) {
                tracing::warn!("the attestation thread had stopped on an internal error");
            } else {
                // The stop budget (systemd's TimeoutStopSec=10): HTTP drains for at most 2 s,
                // the last segment's commit 5 s (milliseconds on a healthy card), the chain
                // threads 2 s, the runtime 0.5 s.
                join_by(t, Instant::now() + Duration::from_secs(5), "attest");
            }
        }
        self.shared.stop();
        let deadline = Instant::now() + Duration::from_secs(2);
        let others = std::mem::take(&mut *self.others.lock().unwrap_or_else(|p| p.into_inner()));
        for t in others {
            join_by(t, deadline, "chain");
        }
        // The chain thread wrote what waited when it stopped; if it was still inside an RPC call,
        // this does (the writer's lock keeps the two from writing an older block after a newer).
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = writer {
            match w.flush(w.clock_ms()) {
                Ok(Wrote::Height(h)) => tracing::info!(height = h, "trusted state stored at stop"),
                Ok(Wrote::Nothing) => {}
                Err(e) => {
                    tracing::error!(error = %e, "the trusted state could not be stored at stop");
                }
            }
        }
        store::remove_pid_file(&self.data_dir);
    }
}

/// Where the attestation thread registers the threads it starts and the trusted-state writer.
struct Threads<'a> {
    others: &'a Arc<Mutex<Vec<JoinHandle<()>>>>,
    writer: &'a WriterSlot,
}

/// The attestation thread: opens the key and the store (retrying every [`OPEN_RETRY`] while
/// that fails, counting the segments that close meanwhile as unanchored), starts the chain and
/// submitter threads, then attests until the encode thread drops its observer.
fn attest_main(
    plan: &Plan,
    stats: &Arc<Stats>,
    shared: &Arc<ChainShared>,
    threads: &Threads<'_>,
    rx: Receiver<Segment>,
    first: std::sync::mpsc::SyncSender<()>,
) {
    let mut first = Some(first);
    let mut last: Option<String> = None;
    loop {
        if shared.stopped() {
            return;
        }
        let started =
            open(plan, stats, shared).and_then(|o| start_threads(plan, stats, shared, threads, o));
        match started {
            Ok(attester) => {
                if let Some(e) = last {
                    tracing::info!(previous_error = %e, "the light validator runs now");
                }
                stats.chain.set_last_error(None);
                tracing::info!(
                    chain_id = %plan.chain_id,
                    primary = %plan.primary,
                    witnesses = plan.rpcs.len().saturating_sub(1),
                    segment_ms = plan.segment_ms,
                    "light validator started"
                );
                drop(first.take());
                attester.run(rx);
                return;
            }
            Err(e) => {
                let report = format!(
                    "the light validator is not running (the video is not affected): {e}; \
                     retrying every {} s",
                    plan.open_retry.as_secs()
                );
                if last.as_deref() != Some(e.as_str()) {
                    tracing::error!("{report}");
                }
                stats.chain.set_last_error(Some(report));
                last = Some(e);
                drop(first.take());
            }
        }
        // Until the next attempt: the segments that close are not attested (no key, no store).
        let until = Instant::now() + plan.open_retry;
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            match rx.recv_timeout(until - now) {
                Ok(_) => crate::stats::ChainStats::inc(&stats.chain.unanchored),
                Err(RecvTimeoutError::Timeout) => break,
                // The encode thread is gone: the node is stopping.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Starts the chain and submitter threads on what [`open`] gave; returns the attester.
fn start_threads(
    plan: &Plan,
    stats: &Arc<Stats>,
    shared: &Arc<ChainShared>,
    threads: &Threads<'_>,
    opened: Opened,
) -> Result<Attester, String> {
    let Opened { key, store, syncer } = opened;
    *threads.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(syncer.writer());
    let submitter = Submitter {
        rpcs: plan.rpcs.clone(),
        retry_min: plan.retry.0,
        retry_max: plan.retry.1,
        store: store.clone(),
        stats: stats.clone(),
        shared: shared.clone(),
    };
    let attester = Attester {
        key,
        chain_id: plan.chain_id.clone(),
        stream_id: plan.stream_id.clone(),
        capacity: plan.outbox_capacity,
        store,
        stats: stats.clone(),
        shared: shared.clone(),
    };
    let mut list = threads.others.lock().unwrap_or_else(|p| p.into_inner());
    let s = Some(stats.clone());
    list.push(spawn("chain", move || {
        let _watch = PanicWatch::arm("chain", s, Arc::default(), Arc::default());
        syncer.run();
    })?);
    let s = Some(stats.clone());
    let spawned = spawn("submit", move || {
        let _watch = PanicWatch::arm("submission", s, Arc::default(), Arc::default());
        submitter.run();
    });
    match spawned {
        Ok(t) => list.push(t),
        Err(e) => {
            // The chain thread without a submitter would fill the outbox for nothing.
            shared.stop();
            return Err(e);
        }
    }
    Ok(attester)
}

// ---- panics in validator threads stay in their thread ----

thread_local! {
    /// Set on a thread whose panics are contained (see [`PanicWatch`]).
    static CONTAINED: RefCell<Option<Contained>> = const { RefCell::new(None) };
}

/// What a contained panic reports to.
struct Contained {
    what: &'static str,
    stats: Option<Arc<Stats>>,
    parked: Arc<AtomicBool>,
    message: Arc<Mutex<Option<String>>>,
}

/// While alive, a panic on this thread is contained: it is logged and reported (the chain's last
/// error if `stats` is given, and `message`), `parked` is set, and the thread parks for good
/// instead of taking the process down. (This was written when the release build aborted on
/// panic, so a panic could not be caught; it unwinds now, and parking in the hook still holds a
/// thread whose library state may be half-changed, which unwinding would release.) The thread
/// parks inside the panic hook, so it keeps the hook's read lock: nothing in
/// the node replaces the hook once it runs, so that costs nothing here (a process that does, like
/// libtest when it ends, would wait for good; see the tests).
struct PanicWatch;

impl PanicWatch {
    fn arm(
        what: &'static str,
        stats: Option<Arc<Stats>>,
        parked: Arc<AtomicBool>,
        message: Arc<Mutex<Option<String>>>,
    ) -> Self {
        install_hook();
        CONTAINED.with(|c| {
            *c.borrow_mut() = Some(Contained {
                what,
                stats,
                parked,
                message,
            });
        });
        Self
    }
}

impl Drop for PanicWatch {
    fn drop(&mut self) {
        let _ = CONTAINED.try_with(|c| c.borrow_mut().take());
    }
}

fn install_hook() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if store::catching_panics() {
                // The store turns it into an error (a damaged node.redb): let it unwind there.
                return;
            }
            let contained = CONTAINED
                .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.take()))
                .ok()
                .flatten();
            let Some(c) = contained else { return };
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            // The crate and file, not the build machine's paths.
            let at = info
                .location()
                .map(|l| {
                    let parts: Vec<&str> = l.file().rsplit('/').take(4).collect();
                    let file: Vec<&str> = parts.into_iter().rev().collect();
                    format!(" at {}:{}", file.join("/"), l.line())
                })
                .unwrap_or_default();
            let e = format!(
                "the {} thread stopped on an internal error ({what}{at}); the video goes on. \
                 A damaged node.redb in the data dir does this: back it up, move it away and \
                 restart the node",
                c.what
            );
            tracing::error!("{e}");
            if let Some(stats) = &c.stats {
                stats.chain.set_last_error(Some(e.clone()));
            }
            *c.message.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            c.parked.store(true, Ordering::SeqCst);
            loop {
                std::thread::park();
            }
        }));
    });
}

/// Runs `f` on a thread of its own with panics contained, waiting at most `timeout`: for code
/// that reads files a third-party library may panic on (the store). `Err` names the panic, or
/// says the time ran out (the thread is left to finish).
pub fn run_contained<T: Send + 'static>(
    what: &'static str,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let parked = Arc::new(AtomicBool::new(false));
    let message = Arc::new(Mutex::new(None::<String>));
    let (p, m) = (parked.clone(), message.clone());
    spawn(what, move || {
        let watch = PanicWatch::arm(what, None, p, m);
        let out = f();
        drop(watch);
        let _ = tx.send(out);
    })?;
    let deadline = Instant::now() + timeout;
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(v) => return Ok(v),
            Err(RecvTimeoutError::Disconnected) => return Err(format!("the {what} ended")),
            Err(RecvTimeoutError::Timeout) if parked.load(Ordering::SeqCst) => {
                let m = message.lock().unwrap_or_else(|p| p.into_inner()).clone();
                return Err(m.unwrap_or_else(|| format!("the {what} stopped on an internal error")));
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                return Err(format!(
                    "the {what} did not end within {} s",
                    timeout.as_secs()
                ));
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Joins `t` if it ends by `deadline`; otherwise leaves it (the process is exiting, and a
/// blocking RPC call must not hold the stop up).
fn join_by(t: JoinHandle<()>, deadline: Instant, what: &str) {
    while !t.is_finished() {
        if Instant::now() >= deadline {
            tracing::warn!(thread = what, "did not stop in time; leaving it");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = t.join();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use sutantra_core::observer::EncodedFrameInfo;

    fn chain_config(dir: &std::path::Path) -> Config {
        let mut cfg = Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        cfg.chain.chain_id = "testchain".into();
        // Nothing listens there: the chain thread only fails its polls.
        cfg.chain.rpc = vec!["http://127.0.0.1:9".into()];
        cfg.chain.trust_height = 1;
        cfg.chain.trust_hash = "AB".repeat(32);
        cfg.attest.segment_ms = 1000;
        cfg
    }

    fn feed(observer: &mut dyn FrameObserver, frames: u64) {
        for i in 0..frames {
            let info = EncodedFrameInfo {
                index: i,
                capture_us: 1_700_000_000_000_000 + i * 100_000,
                rtp_timestamp: (i * 9000) as u32,
                keyframe: i == 0,
                bytes: 10,
            };
            observer.on_encoded(&info, &[i as u8; 10]);
        }
    }

    fn wait_error(stats: &Stats, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = stats.chain.last_error().filter(|e| e.contains(what)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no chain error with {what:?}: {:?}",
                stats.chain.last_error()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs the ignored test `name` of this test binary in a child process and asserts that it
    /// printed `CHILD OK`. A contained panic parks its thread inside the panic hook, holding the
    /// hook's lock for good, and libtest takes the hook when it ends: a process that contained a
    /// panic never finishes libtest's exit. So those tests run alone, in a child, and end the
    /// child themselves (`process::exit`) once they have checked everything.
    fn in_child(name: &str) {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = std::process::Command::new(exe)
            .args([
                "--exact",
                name,
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run the test binary");
        let deadline = Instant::now() + Duration::from_secs(90);
        while child.try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("output");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("CHILD OK"),
            "{name} in a child: {:?}\n{text}",
            out.status
        );
    }

    /// Set in the child process of [`in_child`]; without it the child tests do nothing.
    const CHILD: &str = "SUTANTRA_CONTAINED_PANIC_CHILD";

    fn child_done() -> ! {
        println!("CHILD OK");
        std::process::exit(0)
    }

    #[test]
    fn a_panic_in_a_contained_thread_is_an_error_not_a_crash() {
        in_child("validator::tests::child_contained_panic");
    }

    #[test]
    #[ignore = "runs in a child process of a_panic_in_a_contained_thread_is_an_error_not_a_crash"]
    fn child_contained_panic() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let r: Result<(), String> = run_contained("probe", Duration::from_secs(5), || {
            panic!("boom in a library");
        });
        let e = r.expect_err("a panic");
        assert!(
            e.contains("boom in a library") && e.contains("probe"),
            "{e}"
        );
        // Other threads go on, and contain their own panics too.
        assert_eq!(
            run_contained("probe", Duration::from_secs(5), || 7).expect("fine"),
            7
        );
        let again: Result<(), String> = run_contained("probe", Duration::from_secs(5), || {
            panic!("a second one");
        });
        assert!(again.expect_err("a panic").contains("a second one"));
        let slow = run_contained("probe", Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_millis(500));
        });
        assert!(slow.expect_err("too slow").contains("did not end"));
        child_done();
    }

    #[test]
    fn a_key_it_cannot_use_is_reported_and_retried_without_stopping_the_caller() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = chain_config(dir.path());
        let (_, _) = keys::load_or_create(dir.path()).expect("key");
        let key = keys::key_path(dir.path());
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let stats = Arc::new(Stats::new());
        let t0 = Instant::now();
        let (v, mut observer) =
            LightValidator::launch_retrying(&cfg, stats.clone(), Duration::from_millis(300))
                .expect("launch never fails on a key");
        assert!(
            t0.elapsed() < FIRST_OPEN_WAIT,
            "launch waited {:?}",
            t0.elapsed()
        );
        let e = wait_error(&stats, "chmod 600");
        assert!(e.contains("not running") && e.contains("retrying"), "{e}");
        assert!(
            !store::store_path(dir.path()).exists(),
            "a store opened without a key"
        );
        // Segments that close meanwhile are counted as unanchored.
        feed(observer.as_mut(), 40);
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.chain.unanchored.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < deadline, "no unanchored segment counted");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The operator fixes the mode: the next attempt opens key and store.
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !store::store_path(dir.path()).exists()
            || stats
                .chain
                .last_error()
                .is_some_and(|e| e.contains("chmod"))
        {
            assert!(
                Instant::now() < deadline,
                "not retried: {:?}",
                stats.chain.last_error()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(observer);
        let t0 = Instant::now();
        v.shutdown();
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "shutdown took {:?}",
            t0.elapsed()
        );
    }

    #[test]
    fn a_damaged_store_is_reported_and_the_caller_goes_on() {
        in_child("validator::tests::child_damaged_store");
    }

    #[test]
    #[ignore = "runs in a child process of a_damaged_store_is_reported_and_the_caller_goes_on"]
    fn child_damaged_store() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // A real store, with half of it overwritten (redb panics on such a file) ...
        {
            let s = Store::open(dir.path(), Duration::ZERO).expect("store");
            for seq in 0..50 {
                s.append_attestation(seq, [seq as u8; 32], &[1; 40], 100, 0)
                    .expect("append");
            }
        }
        let path = store::store_path(dir.path());
        let mut bytes = std::fs::read(&path).expect("read");
        let (from, to) = (bytes.len() / 4, bytes.len() * 3 / 4);
        for (i, b) in bytes[from..to].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(151).wrapping_add(7);
        }
        std::fs::write(&path, &bytes).expect("write");
        let cfg = chain_config(dir.path());
        let stats = Arc::new(Stats::new());
        let (v, mut observer) =
            LightValidator::launch_retrying(&cfg, stats.clone(), Duration::from_millis(200))
                .expect("launch never fails on a store");
        let e = wait_error(&stats, "node.redb");
        println!("damaged store: {e}");
        feed(observer.as_mut(), 40);
        drop(observer);
        let t0 = Instant::now();
        v.shutdown();
        assert!(
            t0.elapsed() < Duration::from_secs(12),
            "shutdown took {:?}",
            t0.elapsed()
        );

        // ... and plain bytes that are no store at all: an error, no panic.
        std::fs::write(
            &path,
            b"this is not a redb file at all; just some bytes".repeat(999),
        )
        .expect("write");
        let stats = Arc::new(Stats::new());
        let (v, observer) =
            LightValidator::launch_retrying(&cfg, stats.clone(), Duration::from_secs(30))
                .expect("launch");
        let e = wait_error(&stats, "store");
        assert!(e.contains("node.redb") && e.contains("retrying"), "{e}");
        drop(observer);
        v.shutdown();
        child_done();
    }
}
