//! The light validator in the running node: wiring and shutdown of its three threads.
//!
//! `sutantra run` with a `[chain]` starts here: the chain thread ([`crate::validator::chain::sync`]), the
//! attestation thread and the submitter ([`crate::validator::attest`]), all on plain OS threads (blocking
//! HTTP and fsync'd commits never touch the tokio runtime that serves viewers), and hands the
//! media path the segment observer. Shutdown order matters for "nothing committed is lost and
//! the last segment is attested": the media threads stop first (dropping the observer flushes the
//! open segment), then the attestation thread drains its channel and exits, then the chain and
//! submitter threads are told to stop.

pub mod attest;
pub mod chain;
pub mod keys;
pub mod store;

use crate::config::Config;
use crate::stats::Stats;
use crate::validator::attest::runtime::{Attester, SEGMENT_CHANNEL, SegmentObserver};
use crate::validator::attest::submit::Submitter;
use crate::validator::chain::ChainShared;
use crate::validator::chain::rpc::RpcClient;
use crate::validator::chain::sync::{SyncConfig, Syncer};
use crate::validator::store::Store;
use ed25519_compact::KeyPair;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use sutantra_chain::attest::{SegmentBuilder, SegmentConfig};
use sutantra_chain::light::{ParseLimits, VerifyOptions};
use sutantra_core::observer::FrameObserver;

/// Timeout of one RPC call (connect + request + body).
const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// The running light validator.
#[derive(Debug)]
pub struct LightValidator {
    shared: Arc<ChainShared>,
    attest: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

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

impl LightValidator {
    /// Starts the chain, attestation and submission threads; returns them and the observer
    /// for the encode thread.
    pub fn start(
        cfg: &Config,
        key: KeyPair,
        store: Arc<Store>,
        stats: Arc<Stats>,
    ) -> Result<(Self, Box<dyn FrameObserver>), String> {
        let c = &cfg.chain;
        let trust_hash: [u8; 32] = c
            .trust_hash_bytes()
            .try_into()
            .map_err(|_| "chain.trust_hash: not 32 bytes of hex".to_string())?;
        let root = format!("{}:{}", c.trust_height, hex::encode_upper(trust_hash));
        if store
            .bind_chain(&c.chain_id, &root)
            .map_err(|e| e.to_string())?
        {
            tracing::warn!(trust_root = %root,
                "the trust root changed: the stored trusted blocks were dropped; bootstrapping");
        }
        let meta = store.meta().map_err(|e| e.to_string())?;
        let cs = &stats.chain;
        cs.enabled.store(true, Ordering::Relaxed);
        cs.outbox_dropped
            .store(meta.outbox_dropped, Ordering::Relaxed);
        cs.outbox_depth.store(
            store.pending_count().map_err(|e| e.to_string())?,
            Ordering::Relaxed,
        );
        let opts = verify_options(cfg);
        opts.validate()
            .map_err(|e| format!("[chain] trust_level / trusting_period_s: {e}"))?;
        let limits = ParseLimits {
            // Each response is bounded by max_response_bytes on the wire; the assembled
            // validator set (all pages) may be larger than one page.
            max_bytes: usize::try_from(c.max_response_bytes)
                .unwrap_or(usize::MAX)
                .max(16 * 1024 * 1024),
            max_validators: c.max_validators,
        };
        let rpcs: Vec<RpcClient> = c
            .rpc
            .iter()
            .map(|u| RpcClient::new(u, c.max_response_bytes, RPC_TIMEOUT))
            .collect();
        let shared = Arc::new(ChainShared::new());
        let syncer = Syncer::new(
            SyncConfig {
                chain_id: c.chain_id.clone(),
                trust_height: c.trust_height,
                trust_hash,
                headers_kept: c.headers_kept,
                poll_interval: Duration::from_millis(c.poll_interval_ms),
                opts,
                limits,
            },
            rpcs.clone(),
            store.clone(),
            stats.clone(),
            shared.clone(),
        )?;
        let submitter = Submitter {
            rpcs,
            retry_min: Duration::from_millis(cfg.attest.retry_min_ms),
            retry_max: Duration::from_millis(cfg.attest.retry_max_ms),
            store: store.clone(),
            stats: stats.clone(),
            shared: shared.clone(),
        };
        let attester = Attester {
            key,
            chain_id: c.chain_id.clone(),
            stream_id: cfg.attest.stream_id.clone(),
            capacity: cfg.attest.outbox_capacity,
            store,
            stats: stats.clone(),
            shared: shared.clone(),
        };
        let builder = SegmentBuilder::new(SegmentConfig {
            segment_us: cfg.attest.segment_ms.saturating_mul(1000),
            queue_capacity: 8,
        })
        .map_err(|e| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::sync_channel(SEGMENT_CHANNEL);
        let mut me = Self {
            shared: shared.clone(),
            attest: None,
            others: Vec::new(),
        };
        let started = (|| {
            me.attest = Some(spawn("attest", move || attester.run(rx))?);
            me.others.push(spawn("chain", move || syncer.run())?);
            me.others.push(spawn("submit", move || submitter.run())?);
            Ok::<(), String>(())
        })();
        if let Err(e) = started {
            shared.stop();
            return Err(e);
        }
        tracing::info!(
            chain_id = %c.chain_id,
            primary = %c.rpc.first().map(String::as_str).unwrap_or(""),
            witnesses = c.rpc.len().saturating_sub(1),
            segment_ms = cfg.attest.segment_ms,
            "light validator started"
        );
        Ok((me, Box::new(SegmentObserver::new(builder, tx, stats))))
    }

    /// Stops after the media threads have (their observer is dropped): waits for the
    /// attestation thread to commit the last segment, then stops the chain and submitter
    /// threads, waiting a bounded time for an RPC call in flight.
    pub fn shutdown(mut self) {
        if let Some(t) = self.attest.take() {
            join_by(t, Instant::now() + Duration::from_secs(10), "attest");
        }
        self.shared.stop();
        let deadline = Instant::now() + Duration::from_secs(3);
        for t in self.others.drain(..) {
            join_by(t, deadline, "chain");
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
