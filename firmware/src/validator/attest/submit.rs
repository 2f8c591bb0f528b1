//! The submitter thread: store-and-forward of the outbox with `broadcast_tx_sync`.
//!
//! It owns the outbox's way out: the oldest pending attestation is sent first (the transaction
//! is the signed attestation bytes, hex in the URL); code 0 marks it submitted with the
//! transaction hash, a non-zero code marks it rejected with the code and log (kept, never
//! retried), and a transport or RPC failure counts an attempt and waits with capped exponential
//! backoff and jitter (`retry_min_ms` doubling up to `retry_max_ms`, each wait drawn from its
//! upper half) before trying again, rotating through the configured RPC servers. Every status
//! change is a durable store commit. Logs: one line when a failure streak starts and one when it
//! ends, one per rejection. While attestations are halted by a witness conflict, nothing is sent.

use crate::stats::{ChainStats, Stats};
use crate::validator::chain::ChainShared;
use crate::validator::chain::rpc::{Broadcast, RpcClient, RpcError};
use crate::validator::store::{OutboxStatus, Store};
use sha2::Digest as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use sutantra_core::backoff::Backoff;

/// The submitter's settings and handles.
#[derive(Debug)]
pub struct Submitter {
    /// RPC servers, tried in turn after a failure (the primary first).
    pub rpcs: Vec<RpcClient>,
    /// First retry delay.
    pub retry_min: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// The store.
    pub store: Arc<Store>,
    /// Counters.
    pub stats: Arc<Stats>,
    /// Halted flag, stop and wake-up.
    pub shared: Arc<ChainShared>,
}

/// What became of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted (code 0), with the transaction hash.
    Submitted(String),
    /// Rejected by the app (code != 0): kept, not retried.
    Rejected(u32, String),
    /// Not delivered; try again later.
    Failed(String),
}

/// Classifies an answer of `broadcast_tx_sync` for `tx`.
pub fn classify(tx: &[u8], answer: Result<Broadcast, RpcError>) -> Outcome {
    match answer {
        Ok(b) if b.code == 0 => Outcome::Submitted(b.hash),
        Ok(b) => {
            let log = if b.codespace.is_empty() {
                b.log
            } else {
                format!("{} (codespace {})", b.log, b.codespace)
            };
            Outcome::Rejected(b.code, log)
        }
        // Sent before (an earlier attempt whose answer was lost): the mempool already holds it.
        Err(RpcError::Rpc { message, .. }) if message.contains("already exists in cache") => {
            Outcome::Submitted(hex::encode_upper(sha2::Sha256::digest(tx)))
        }
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

impl Submitter {
    /// The waits between retries: the core's capped exponential backoff, each wait drawn from
    /// the upper half of its step so that nodes that failed together do not retry together.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.retry_min, self.retry_max).with_jitter(0.5)
    }

    /// Runs until the shared stop flag is set.
    pub fn run(self) {
        let c = &self.stats.chain;
        let mut failures: u32 = 0;
        let mut backoff = self.backoff();
        let mut store_error: Option<String> = None;
        let mut rpc = 0usize;
        while !self.shared.stopped() {
            if self.shared.halted() {
                if self.shared.sleep(Duration::from_secs(1)) {
                    break;
                }
                continue;
            }
            let entry = match self.store.oldest_pending() {
                Ok(Some(e)) => e,
                Ok(None) => {
                    if self.store.failing().is_none() {
                        store_error = None;
                    }
                    c.outbox_depth.store(0, Ordering::Relaxed);
                    if self.shared.sleep(Duration::from_millis(500)) {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    let e = e.to_string();
                    if store_error.is_none() {
                        tracing::error!(error = %e, "cannot read the outbox; retrying every second");
                    }
                    store_error = Some(e);
                    if self.shared.sleep(Duration::from_secs(1)) {
                        break;
                    }
                    continue;
                }
            };
            let Some(client) = self.rpcs.get(rpc % self.rpcs.len().max(1)) else {
                return;
            };
            let outcome = classify(&entry.signed, client.broadcast_tx_sync(&entry.signed));
            let (status, failed) = match &outcome {
                Outcome::Submitted(hash) => (
                    OutboxStatus::Submitted {
                        tx_hash: hash.clone(),
                        height: None,
                    },
                    None,
                ),
                Outcome::Rejected(code, log) => (
                    OutboxStatus::Rejected {
                        code: *code,
                        log: log.clone(),
                    },
                    None,
                ),
                Outcome::Failed(e) => (OutboxStatus::Pending, Some(e.as_str())),
            };
            if let Err(e) = self.store.update_entry(entry.seq, status, failed) {
                let e = e.to_string();
                if store_error.is_none() {
                    tracing::error!(seq = entry.seq, error = %e, "cannot record the submission; retrying every second");
                }
                store_error = Some(e);
                // The entry stays pending and is sent again (the chain answers "already in the
                // cache" for a delivered one); not at once: the store needs time to recover.
                if self.shared.sleep(Duration::from_secs(1)) {
                    break;
                }
                continue;
            }
            if self.store.failing().is_none() {
                store_error = None;
            }
            match outcome {
                Outcome::Submitted(hash) => {
                    ChainStats::inc(&c.submitted);
                    if failures > 0 {
                        tracing::info!(
                            failed_attempts = failures,
                            rpc = %client.base(),
                            "attestation submission works again"
                        );
                    }
                    failures = 0;
                    backoff.reset();
                    tracing::debug!(seq = entry.seq, tx_hash = %hash, "attestation submitted");
                }
                Outcome::Rejected(code, log) => {
                    ChainStats::inc(&c.rejected);
                    tracing::warn!(seq = entry.seq, code, log = %log,
                        "the chain rejected an attestation; kept in the outbox, not retried");
                }
                Outcome::Failed(e) => {
                    ChainStats::inc(&c.submit_failures);
                    if failures == 0 {
                        tracing::warn!(seq = entry.seq, error = %e,
                            "attestation submission failing; retrying with backoff");
                    }
                    let wait = backoff.next_delay(rand::random::<f64>());
                    failures = failures.saturating_add(1);
                    rpc = rpc.wrapping_add(1);
                    if self.shared.sleep_until(std::time::Instant::now() + wait) {
                        break;
                    }
                }
            }
            if let Ok(n) = self.store.pending_count() {
                c.outbox_depth.store(n, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::chain::rpc::Broadcast;

    #[test]
    fn answers_are_classified() {
        let ok = Broadcast {
            code: 0,
            log: String::new(),
            codespace: String::new(),
            hash: "AB".into(),
        };
        assert_eq!(
            classify(b"x", Ok(ok.clone())),
            Outcome::Submitted("AB".into())
        );
        let no = Broadcast {
            code: 5,
            log: "bad tx".into(),
            ..ok
        };
        assert_eq!(
            classify(b"x", Ok(no)),
            Outcome::Rejected(5, "bad tx".into())
        );
        let dup = RpcError::Rpc {
            url: "u".into(),
            code: -32603,
            message: "Internal error: tx already exists in cache".into(),
        };
        assert_eq!(
            classify(b"abc", Err(dup)),
            Outcome::Submitted(
                "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD".into()
            )
        );
        let down = RpcError::Unreachable {
            url: "u".into(),
            reason: "refused".into(),
        };
        assert!(matches!(classify(b"x", Err(down)), Outcome::Failed(_)));
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter_in_the_upper_half() {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = Submitter {
            rpcs: vec![],
            retry_min: Duration::from_millis(1000),
            retry_max: Duration::from_millis(60_000),
            store: Arc::new(Store::open(dir.path(), Duration::ZERO).expect("store")),
            stats: Arc::new(Stats::new()),
            shared: Arc::new(ChainShared::new()),
        };
        for (n, full) in [
            (0u32, 1000u64),
            (1, 2000),
            (2, 4000),
            (5, 32_000),
            (6, 60_000),
            (40, 60_000),
        ] {
            for _ in 0..20 {
                let mut b = s.backoff();
                for _ in 0..n {
                    b.next_delay(0.0);
                }
                let d = b.next_delay(rand::random::<f64>()).as_millis() as u64;
                assert!(
                    d >= full / 2 && d <= full,
                    "retry {n}: {d} ms not in {}..={full}",
                    full / 2
                );
            }
        }
    }
}
