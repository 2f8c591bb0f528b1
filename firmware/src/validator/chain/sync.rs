//! The chain thread: follows the chain from the trust root with skipping verification and
//! cross-checks witnesses.
//!
//! It owns the light client's life cycle in the node:
//! 1. start from the newest trusted light block in the store, or bootstrap from the configured
//!    trust root: fetch the block at `trust_height` from the primary and refuse it (loudly,
//!    every poll) unless its header hashes to `trust_hash`, names the chain, and its commit and
//!    validator sets check out;
//! 2. every poll interval: `/status` of the primary → `verify_to_height` (the core's bisection,
//!    fetching from the primary) → cross-check the verified header against every witness at the
//!    same height → publish it as the anchor and hand it to the [`TrustedWriter`], which stores
//!    it on a write budget (the first at once, then at most once per `persist_interval_s`, and
//!    at a clean stop; keeping `headers_kept`): verification goes on in memory at every height;
//! 3. a witness whose header at that height hashes differently is a conflict: an error line with
//!    both hashes and URLs, the halted flag set in the store (it survives restarts) and in
//!    memory, and no attestation (or submission) until an operator runs `sutantra chain resume`.
//!
//! Logs: one line per newly verified height, one per error streak start (and its end), one per
//! conflict; never one per poll. A witness that is unreachable or behind is not a conflict.

use super::persist::{TrustedWriter, Wrote};
use super::rpc::RpcClient;
use super::{Anchor, ChainShared, now_time, unix_now, unix_now_ms};
use crate::stats::{ChainStats, Stats};
use crate::validator::store::Store;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use sutantra_chain::light::{
    ChainError, FetchError, LightBlock, ParseLimits, Sha256Provider, SignedHeader, TrustedState,
    ValidatorSet, Verdict, VerifyOptions, header_hash, light_block_from_rpc,
    parse_light_block_with, verify_commit, verify_to_height,
};

/// What the chain thread needs from the configuration.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The chain id every header must name.
    pub chain_id: String,
    /// Trust root height.
    pub trust_height: u64,
    /// Trust root header hash.
    pub trust_hash: [u8; 32],
    /// Light blocks kept in the store.
    pub headers_kept: usize,
    /// Least time between two writes of the trusted state (the first of a run and the one at a
    /// clean stop are not held back).
    pub persist_interval: Duration,
    /// Time between polls.
    pub poll_interval: Duration,
    /// Verifier options.
    pub opts: VerifyOptions,
    /// Parse bounds (body size, validators).
    pub limits: ParseLimits,
}

/// The light-block JSON kept in the store and printed by the CLI (CometBFT RPC encoding).
#[derive(Serialize)]
struct LightBlockDoc<'a> {
    signed_header: &'a SignedHeader,
    validator_set: &'a ValidatorSet,
    next_validator_set: &'a ValidatorSet,
}

/// A light block as JSON (`signed_header`, `validator_set`, `next_validator_set`).
pub fn light_block_json(b: &LightBlock) -> Result<Vec<u8>, String> {
    serde_json::to_vec(&LightBlockDoc {
        signed_header: &b.signed_header,
        validator_set: &b.validators,
        next_validator_set: &b.next_validators,
    })
    .map_err(|e| format!("cannot encode the light block: {e}"))
}

/// The header hash of a signed header (CometBFT's block id hash).
pub fn signed_header_hash(sh: &SignedHeader) -> [u8; 32] {
    let h = sh.header.hash_with::<Sha256Provider>();
    <[u8; 32]>::try_from(h.as_bytes()).unwrap_or([0; 32])
}

/// Fetches the light block at `height` from `client`: `/commit`, `/validators` at `height` and
/// at `height + 1` (all pages, each set within one `chain.max_response_bytes` budget), assembled
/// and bounded by the core's parser.
pub fn fetch_light_block(
    client: &RpcClient,
    height: u64,
    limits: &ParseLimits,
) -> Result<LightBlock, String> {
    let commit = client.commit(height).map_err(|e| e.to_string())?;
    let vals = client
        .validators(height, limits.max_validators)
        .map_err(|e| e.to_string())?;
    let next = client
        .validators(height.saturating_add(1), limits.max_validators)
        .map_err(|e| e.to_string())?;
    light_block_from_rpc(&commit.to_json(), &vals.to_json(), &next.to_json(), limits)
        .map_err(|e| format!("{}: height {height}: {e}", client.base()))
}

/// The chain thread's state.
#[derive(Debug)]
pub struct Syncer {
    cfg: SyncConfig,
    store: Arc<Store>,
    stats: Arc<Stats>,
    shared: Arc<ChainShared>,
    primary: RpcClient,
    witnesses: Vec<RpcClient>,
    trusted: Option<LightBlock>,
    writer: Arc<TrustedWriter>,
    last_error: Option<String>,
    witness_errors: Vec<Option<String>>,
    conflict_logged: Option<u64>,
}

impl Syncer {
    /// A chain thread over `rpcs` (the first is the primary). Loads the trusted state and the
    /// halted flag from the store and publishes them before the first poll, so the node anchors
    /// attestations even while the chain is unreachable.
    pub fn new(
        cfg: SyncConfig,
        rpcs: Vec<RpcClient>,
        store: Arc<Store>,
        stats: Arc<Stats>,
        shared: Arc<ChainShared>,
    ) -> Result<Self, String> {
        let mut rpcs = rpcs.into_iter();
        let primary = rpcs
            .next()
            .ok_or_else(|| "chain.rpc is empty: configure at least one RPC URL".to_string())?;
        let witnesses: Vec<RpcClient> = rpcs.collect();
        let stored = store
            .trusted_heights()
            .map_err(|e| e.to_string())?
            .last()
            .copied();
        let writer = Arc::new(TrustedWriter::new(
            store.clone(),
            cfg.headers_kept,
            cfg.persist_interval,
            stored,
        ));
        let mut s = Self {
            witness_errors: vec![None; witnesses.len()],
            cfg,
            writer,
            store,
            stats,
            shared,
            primary,
            witnesses,
            trusted: None,
            last_error: None,
            conflict_logged: None,
        };
        s.load()?;
        Ok(s)
    }

    /// The writer of the trusted state, for the node's shutdown to flush what waits.
    pub fn writer(&self) -> Arc<TrustedWriter> {
        self.writer.clone()
    }

    fn chain_stats(&self) -> &ChainStats {
        &self.stats.chain
    }

    fn load(&mut self) -> Result<(), String> {
        let meta = self.store.meta().map_err(|e| e.to_string())?;
        if let Some(h) = &meta.halted {
            self.shared.set_halted(true);
            self.chain_stats().halted.store(true, Ordering::Relaxed);
            tracing::error!(
                since = %super::rfc3339(h.since_unix),
                reason = %h.reason,
                "attestations are HALTED by a witness conflict; after checking, stop the node and \
                 run `sutantra chain resume`"
            );
        }
        if let Some((height, json)) = self.store.latest_trusted().map_err(|e| e.to_string())? {
            match parse_light_block_with(&json, &self.cfg.limits) {
                Ok(block) => {
                    let hash = header_hash(&block);
                    self.publish(
                        &block,
                        height,
                        hash,
                        meta.last_verified_unix.saturating_mul(1000),
                    );
                    tracing::info!(
                        height,
                        hash = %hex::encode_upper(hash),
                        "resuming from the trusted state in the store"
                    );
                    self.trusted = Some(block);
                }
                Err(e) => tracing::error!(
                    height,
                    error = %e,
                    "the stored trusted light block is damaged; bootstrapping from the trust root"
                ),
            }
        }
        Ok(())
    }

    fn publish(&self, block: &LightBlock, height: u64, hash: [u8; 32], verified_ms: u64) {
        let header_s = u64::try_from(block.signed_header.header.time.unix_timestamp()).unwrap_or(0);
        let expires_unix_s = header_s.saturating_add(self.cfg.opts.trusting_period.as_secs());
        self.shared.set_anchor(Anchor {
            height,
            hash,
            expires_unix_s,
        });
        let c = self.chain_stats();
        c.trusted_height.store(height, Ordering::Relaxed);
        c.last_verified_ms.store(verified_ms, Ordering::Relaxed);
    }

    /// Runs until the shared stop flag is set, then writes the trusted state that waits.
    pub fn run(mut self) {
        let period = self.cfg.poll_interval;
        let mut next = Instant::now();
        while !self.shared.stopped() {
            let mut polled = self.poll();
            // Also after a failed poll: a height verified before the chain became unreachable
            // lands within one interval all the same.
            if let Err(e) = self.writer.tick(self.writer.clock_ms())
                && polled.is_ok()
            {
                polled = Err(format!("the trusted state could not be stored: {e}"));
            }
            match polled {
                Ok(()) => {
                    if let Some(e) = self.last_error.take() {
                        tracing::info!(previous_error = %e, "chain polling recovered");
                    }
                    self.chain_stats().set_last_error(None);
                }
                Err(e) => {
                    ChainStats::inc(&self.chain_stats().verify_errors);
                    if self.last_error.as_deref() != Some(e.as_str()) {
                        tracing::warn!(error = %e, "chain poll failed; retrying every poll interval");
                    }
                    self.chain_stats().set_last_error(Some(e.clone()));
                    self.last_error = Some(e);
                }
            }
            next += period;
            let now = Instant::now();
            if next < now {
                // A slow poll (bisection over many fetches): the next one starts a period from
                // now, never in a burst.
                next = now + period;
            }
            if self.shared.sleep_until(next) {
                break;
            }
        }
        self.stop_writing();
    }

    /// A clean stop: the newest verified height is written, whatever the budget.
    fn stop_writing(&self) {
        match self.writer.flush(self.writer.clock_ms()) {
            Ok(Wrote::Height(h)) => tracing::info!(height = h, "trusted state stored at stop"),
            Ok(Wrote::Nothing) => {}
            Err(e) => tracing::error!(error = %e, "the trusted state could not be stored at stop"),
        }
    }

    /// Hands a newly verified block to the writer (stored now or later, see [`TrustedWriter`]).
    fn persist(&self, height: u64, block: &LightBlock, verified_ms: u64) -> Result<(), String> {
        match self
            .writer
            .verified(height, block, verified_ms / 1000, self.writer.clock_ms())
        {
            Ok(Wrote::Height(h)) => {
                tracing::debug!(height = h, "trusted state stored");
                Ok(())
            }
            Ok(Wrote::Nothing) => Ok(()),
            Err(e) => Err(format!("the trusted state could not be stored: {e}")),
        }
    }

    /// One poll: bootstrap if needed, then verify up to the primary's latest height.
    pub fn poll(&mut self) -> Result<(), String> {
        let now = now_time()?;
        if self.trusted.is_none() {
            self.bootstrap()?;
        }
        let Some(trusted) = self.trusted.as_ref() else {
            return Err("no trusted state".into());
        };
        let trusted_height = trusted.signed_header.header.height.value();
        let status = self.primary.status().map_err(|e| e.to_string())?;
        if status.network != self.cfg.chain_id {
            return Err(format!(
                "{}: the primary is on chain `{}`, not `{}`",
                self.primary.base(),
                status.network,
                self.cfg.chain_id
            ));
        }
        let target = status.latest_height;
        if target <= trusted_height {
            return Ok(());
        }
        let primary = &self.primary;
        let limits = self.cfg.limits;
        let mut fetch = |h: u64| fetch_light_block(primary, h, &limits).map_err(FetchError::new);
        let path = verify_to_height(trusted, target, &self.cfg.opts, now, &mut fetch)
            .map_err(|e| with_hint(&e))?;
        let hash = header_hash(&path.target);
        let trusted = trusted.clone();
        self.cross_check(target, hash, &trusted, now)?;
        let verified_ms = unix_now_ms();
        self.publish(&path.target, target, hash, verified_ms);
        tracing::info!(
            height = target,
            hash = %hex::encode_upper(hash),
            from = trusted_height,
            fetched = path.fetches,
            bisections = path.bisections,
            "verified a new height"
        );
        let stored = self.persist(target, &path.target, verified_ms);
        self.trusted = Some(path.target);
        stored
    }

    fn bootstrap(&mut self) -> Result<(), String> {
        let h = self.cfg.trust_height;
        let url = self.primary.base().to_string();
        let block = fetch_light_block(&self.primary, h, &self.cfg.limits)?;
        let hash = header_hash(&block);
        if hash != self.cfg.trust_hash {
            let msg = format!(
                "TRUST ROOT MISMATCH: {url} serves a header at height {h} that hashes to {}, but \
                 chain.trust_hash is {}; refusing to trust it (check trust_hash, or the RPC server \
                 is lying)",
                hex::encode_upper(hash),
                hex::encode_upper(self.cfg.trust_hash)
            );
            tracing::error!("{msg}");
            return Err(msg);
        }
        let chain_id = block.signed_header.header.chain_id.as_str().to_string();
        if chain_id != self.cfg.chain_id {
            return Err(format!(
                "{url}: the trust root at height {h} is on chain `{chain_id}`, not `{}`",
                self.cfg.chain_id
            ));
        }
        match verify_commit(&block.signed_header, &block.validators) {
            Verdict::Success => {}
            v => {
                return Err(format!(
                    "{url}: the trust root's commit at height {h} does not check out: {v}"
                ));
            }
        }
        TrustedState::try_from(&block).map_err(|e| format!("{url}: trust root: {e}"))?;
        // Like CometBFT's light client: a trust root older than the trusting period is refused.
        let header_s = block.signed_header.header.time.unix_timestamp();
        let age_s = (unix_now_ms() / 1000) as i64 - header_s;
        if age_s >= self.cfg.opts.trusting_period.as_secs() as i64 {
            let msg = format!(
                "TRUST ROOT EXPIRED: the header at height {h} is {age_s} s old, beyond the trusting \
                 period of {} s; set chain.trust_height/trust_hash to a recent block",
                self.cfg.opts.trusting_period.as_secs()
            );
            tracing::error!("{msg}");
            return Err(msg);
        }
        let verified_ms = unix_now_ms();
        self.publish(&block, h, hash, verified_ms);
        tracing::info!(height = h, hash = %hex::encode_upper(hash), rpc = %url, "trust root verified");
        let stored = self.persist(h, &block, verified_ms);
        self.trusted = Some(block);
        stored
    }

    /// Compares the header at `height` with every witness. A different hash halts
    /// attestations; an unreachable or lagging witness is logged once per streak.
    /// Compares the newly verified header with each witness. A different header at the same
    /// height halts attestations only if the witness's header itself verifies from our trusted
    /// state (two validly signed histories: a real fork or an attack); a witness whose header does
    /// not verify is faulty, and is reported without halting (a lying witness alone must not be
    /// able to stop the node).
    fn cross_check(
        &mut self,
        height: u64,
        hash: [u8; 32],
        trusted: &LightBlock,
        now: sutantra_chain::light::Time,
    ) -> Result<(), String> {
        for i in 0..self.witnesses.len() {
            let w = &self.witnesses[i];
            let theirs = w
                .commit(height)
                .map(|c| signed_header_hash(&c.signed_header));
            match theirs {
                Ok(theirs) if theirs == hash => {
                    if let Some(e) = self.witness_errors[i].take() {
                        tracing::info!(witness = %w.base(), previous_error = %e, "witness reachable again");
                    }
                }
                Ok(theirs) => {
                    let limits = self.cfg.limits;
                    let mut fetch =
                        |h: u64| fetch_light_block(w, h, &limits).map_err(FetchError::new);
                    if let Err(e) =
                        verify_to_height(trusted, height, &self.cfg.opts, now, &mut fetch)
                    {
                        let e = format!(
                            "FAULTY WITNESS: its header {} at height {height} does not verify \
                             from our trusted state ({e}); ignoring it, attestations go on",
                            hex::encode_upper(theirs)
                        );
                        if self.witness_errors[i].as_deref() != Some(e.as_str()) {
                            tracing::warn!(witness = %w.base(), "{e}");
                        }
                        self.witness_errors[i] = Some(e);
                        continue;
                    }
                    let reason = format!(
                        "CONFLICT at height {height}: primary {} has header {}, witness {} has \
                         header {}",
                        self.primary.base(),
                        hex::encode_upper(hash),
                        w.base(),
                        hex::encode_upper(theirs)
                    );
                    if self.conflict_logged != Some(height) {
                        tracing::error!(
                            "{reason}; attestations are HALTED until an operator checks both \
                             servers and runs `sutantra chain resume`"
                        );
                        self.conflict_logged = Some(height);
                    }
                    if !self.shared.halted() {
                        self.shared.set_halted(true);
                        self.chain_stats().halted.store(true, Ordering::Relaxed);
                        self.store
                            .set_halted(&reason, unix_now())
                            .map_err(|e| format!("{reason}; and the halt was not stored: {e}"))?;
                    }
                    return Err(reason);
                }
                Err(e) => {
                    let e = e.to_string();
                    if self.witness_errors[i].as_deref() != Some(e.as_str()) {
                        tracing::warn!(witness = %w.base(), height, error = %e,
                            "witness could not be checked (unreachable or behind); not a conflict");
                    }
                    self.witness_errors[i] = Some(e);
                }
            }
        }
        Ok(())
    }
}

/// A verification error, with what the operator can do about the ones that need them.
fn with_hint(e: &ChainError) -> String {
    match e {
        ChainError::TrustExpired { .. } => format!(
            "{e}; the trusted state is older than the trusting period: set a recent \
             [chain] trust_height and trust_hash to re-root"
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::validator::chain::rpc::tests::{recorded, serve, vectors};

    /// The recorded genesis validators as `/validators` entries.
    fn kvstore_validators() -> Vec<serde_json::Value> {
        let genesis: serde_json::Value =
            serde_json::from_slice(&recorded("genesis.json")).expect("genesis JSON");
        genesis["result"]["genesis"]["validators"]
            .as_array()
            .expect("genesis validators")
            .iter()
            .map(|v| {
                serde_json::json!({"address": v["address"], "pub_key": v["pub_key"],
                    "voting_power": v["power"], "proposer_priority": "0"})
            })
            .collect()
    }

    /// The recorded v0.38 light block at height 10 (the genesis validator as both sets).
    pub fn kvstore_block() -> LightBlock {
        let commit = recorded("commit_at_height_10.json");
        let vals = kvstore_validators();
        let set = |height: u64| {
            serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": -1, "result": {
                "block_height": height.to_string(), "validators": vals,
                "count": vals.len().to_string(), "total": vals.len().to_string()}}))
            .expect("json")
        };
        light_block_from_rpc(&commit, &set(10), &set(11), &ParseLimits::default())
            .expect("the recorded light block")
    }

    /// The recorded v0.38 commit at height 10 with the recorded genesis validator as both sets.
    fn kvstore_rpc() -> String {
        let commit = recorded("commit_at_height_10.json");
        let vals = kvstore_validators();
        serve(16, move |path| {
            let height = path
                .split("height=")
                .nth(1)
                .and_then(|s| s.split('&').next())
                .unwrap_or("10")
                .to_string();
            let body = if path.starts_with("/commit") {
                commit.clone()
            } else {
                serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": -1, "result": {
                    "block_height": height, "validators": vals,
                    "count": vals.len().to_string(), "total": vals.len().to_string()}}))
                .expect("json")
            };
            (200, vec![], body)
        })
    }

    #[test]
    fn fetches_and_stores_the_recorded_kvstore_block() {
        assert!(vectors().is_dir(), "{}", vectors().display());
        let base = kvstore_rpc();
        let client = RpcClient::new(&base, 1 << 20, Duration::from_secs(5));
        let block = fetch_light_block(&client, 10, &ParseLimits::default()).expect("light block");
        assert_eq!(
            hex::encode_upper(header_hash(&block)),
            "00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE"
        );
        assert_eq!(
            verify_commit(&block.signed_header, &block.validators),
            Verdict::Success
        );
        // The stored JSON parses back to the same block.
        let json = light_block_json(&block).expect("encode");
        let again = parse_light_block_with(&json, &ParseLimits::default()).expect("decode");
        assert_eq!(header_hash(&again), header_hash(&block));
        assert_eq!(
            signed_header_hash(&again.signed_header),
            header_hash(&block)
        );
    }

    #[test]
    fn bootstrap_refuses_a_wrong_trust_hash_and_accepts_the_right_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path(), Duration::ZERO).expect("store"));
        let stats = Arc::new(Stats::new());
        let mut cfg = SyncConfig {
            chain_id: "dockerchain".into(),
            trust_height: 10,
            trust_hash: [0xAB; 32],
            headers_kept: 8,
            persist_interval: Duration::from_secs(60),
            poll_interval: Duration::from_millis(100),
            opts: VerifyOptions {
                // The recorded kvstore block is from 2024: keep it inside the trusting period.
                trusting_period: Duration::from_secs(100 * 365 * 24 * 3600),
                ..VerifyOptions::default()
            },
            limits: ParseLimits::default(),
        };
        let base = kvstore_rpc();
        let client = || vec![RpcClient::new(&base, 1 << 20, Duration::from_secs(5))];
        let shared = Arc::new(ChainShared::new());
        let mut s = Syncer::new(
            cfg.clone(),
            client(),
            store.clone(),
            stats.clone(),
            shared.clone(),
        )
        .expect("syncer");
        let e = s.bootstrap().expect_err("wrong hash");
        assert!(e.contains("TRUST ROOT MISMATCH"), "{e}");
        assert!(store.latest_trusted().expect("read").is_none());
        assert_eq!(shared.anchor(), None);
        let mut right = [0u8; 32];
        hex::decode_to_slice(
            "00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE",
            &mut right,
        )
        .expect("hex");
        cfg.trust_hash = right;
        let mut s = Syncer::new(
            cfg.clone(),
            client(),
            store.clone(),
            stats.clone(),
            shared.clone(),
        )
        .expect("syncer");
        s.bootstrap().expect("right hash");
        assert_eq!(shared.anchor().map(|a| a.height), Some(10));
        // The first trusted block of a run is stored at once, not held by the budget.
        assert_eq!(store.trusted_heights().expect("heights"), vec![10]);
        assert_eq!(s.writer().writes(), 1);
        assert_eq!(stats.chain.trusted_height.load(Ordering::Relaxed), 10);
        // A new syncer resumes from the store without the network.
        let shared2 = Arc::new(ChainShared::new());
        let dead = vec![RpcClient::new(
            "http://127.0.0.1:9",
            1 << 20,
            Duration::from_secs(1),
        )];
        let s2 = Syncer::new(cfg, dead, store, stats, shared2.clone()).expect("syncer");
        assert!(s2.trusted.is_some());
        assert_eq!(
            shared2.anchor().map(|a| (a.height, a.hash)),
            Some((10, right))
        );
    }

    fn config(interval: Duration) -> SyncConfig {
        let mut trust_hash = [0u8; 32];
        hex::decode_to_slice(
            "00ECDAC463C201ECD4BDBBAAE4A53A4C80291D4051FD69ED97F6420CE1388BFE",
            &mut trust_hash,
        )
        .expect("hex");
        SyncConfig {
            chain_id: "dockerchain".into(),
            trust_height: 10,
            trust_hash,
            headers_kept: 8,
            persist_interval: interval,
            poll_interval: Duration::from_millis(100),
            opts: VerifyOptions {
                trusting_period: Duration::from_secs(100 * 365 * 24 * 3600),
                ..VerifyOptions::default()
            },
            limits: ParseLimits::default(),
        }
    }

    fn dead_rpc() -> Vec<RpcClient> {
        vec![RpcClient::new(
            "http://127.0.0.1:9",
            1 << 20,
            Duration::from_secs(1),
        )]
    }

    #[test]
    fn a_crash_resumes_from_the_last_stored_block_and_a_clean_stop_stores_the_newest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(Store::open(dir.path(), Duration::ZERO).expect("store"));
        let stats = Arc::new(Stats::new());
        let block = kvstore_block();
        let hash = header_hash(&block);
        // A run: height 10 stored at once, then 11 verified within the minute (waiting).
        let shared = Arc::new(ChainShared::new());
        let s = Syncer::new(
            config(Duration::from_secs(60)),
            dead_rpc(),
            store.clone(),
            stats.clone(),
            shared.clone(),
        )
        .expect("syncer");
        s.persist(10, &block, 1_700_000_000_000).expect("first");
        s.persist(11, &block, 1_700_000_005_000).expect("second");
        assert_eq!(s.writer().stored_height(), Some(10));
        assert_eq!(s.writer().waiting_height(), Some(11));
        // kill -9 here: the waiting height is lost; the next start resumes from 10, offline,
        // and re-verifies from there.
        drop(s);
        let shared2 = Arc::new(ChainShared::new());
        let s = Syncer::new(
            config(Duration::from_secs(60)),
            dead_rpc(),
            store.clone(),
            stats.clone(),
            shared2.clone(),
        )
        .expect("syncer after a crash");
        assert_eq!(
            shared2.anchor().map(|a| (a.height, a.hash)),
            Some((10, hash))
        );
        assert_eq!(
            store.meta().expect("meta").last_verified_unix,
            1_700_000_000
        );
        // This run stores its first new height at once, then holds the next one ...
        s.persist(11, &block, 1_700_000_010_000)
            .expect("first of the run");
        s.persist(12, &block, 1_700_000_015_000).expect("held");
        assert_eq!(store.trusted_heights().expect("heights"), vec![10, 11]);
        // ... which a clean stop (the run loop ending) stores.
        shared2.stop();
        s.run();
        assert_eq!(store.trusted_heights().expect("heights"), vec![10, 11, 12]);
        assert_eq!(
            store.meta().expect("meta").last_verified_unix,
            1_700_000_015
        );
    }
}
