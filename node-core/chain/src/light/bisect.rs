//! Skipping verification ("bisection"): from a trusted block to a target height with as few
//! fetched headers as the validator-set changes allow.
//!
//! The schedule is tendermint-rs' light client (`LightClient::verify_forward` with
//! `scheduler::basic_bisecting_schedule`):
//! 1. the latest verified block (initially the trusted one) must be within the trusting period;
//!    if it is at the target, done;
//! 2. verify the block at the current height (initially the target) against it: SUCCESS makes it
//!    the latest verified block; NOT_ENOUGH_TRUST keeps it aside (it may verify later from a
//!    closer block); INVALID ends the run with an error (the provider is faulty);
//! 3. next height: if the latest verified block is at the current height, try the target again;
//!    otherwise the midpoint `trusted + (current + 1 - trusted) / 2`, and go to 1.
//!
//! The core does no I/O: blocks come from the caller's `fetch(height)` (the firmware does the
//! HTTP, the tests read vectors). Each height is fetched at most once per call, and at most
//! `max_fetches` fetches are made ([`DEFAULT_MAX_FETCHES`]), so a provider that keeps answering
//! NOT_ENOUGH_TRUST cannot make the node work or allocate without bound.

use std::collections::BTreeMap;

use tendermint_light_client_verifier::types::{LightBlock, Time};

use super::verify::height_of;
use super::{ChainError, TrustedState, Verdict, VerifyOptions, verify_step};

/// Fetch limit of [`verify_to_height`]. Bisection over `n` heights needs about `log2(n)`
/// fetches per validator-set change it has to cross; 64 covers any realistic chain history.
pub const DEFAULT_MAX_FETCHES: usize = 64;

/// The error a caller's `fetch` returns (network failure, height not available, bad JSON...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

impl FetchError {
    /// A fetch error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<ChainError> for FetchError {
    /// A fetched response that did not parse.
    fn from(e: ChainError) -> Self {
        Self(e.to_string())
    }
}

/// The result of [`verify_to_height`].
#[derive(Debug, Clone)]
pub struct VerifiedPath {
    /// The verified block at the target height (the new trusted state).
    pub target: LightBlock,
    /// The blocks verified on the way, in ascending height, excluding the initial trusted block
    /// and the target.
    pub intermediate: Vec<LightBlock>,
    /// How many times a NOT_ENOUGH_TRUST verdict made the schedule pick a closer pivot height.
    pub bisections: usize,
    /// How many blocks were fetched.
    pub fetches: usize,
}

/// Verifies the block at `target_height` starting from the trusted block `trusted`, fetching
/// blocks through `fetch`, with at most [`DEFAULT_MAX_FETCHES`] fetches.
pub fn verify_to_height(
    trusted: &LightBlock,
    target_height: u64,
    opts: &VerifyOptions,
    now: Time,
    fetch: &mut dyn FnMut(u64) -> Result<LightBlock, FetchError>,
) -> Result<VerifiedPath, ChainError> {
    verify_to_height_with_limit(
        trusted,
        target_height,
        opts,
        now,
        fetch,
        DEFAULT_MAX_FETCHES,
    )
}

/// [`verify_to_height`] with an explicit fetch limit.
pub fn verify_to_height_with_limit(
    trusted: &LightBlock,
    target_height: u64,
    opts: &VerifyOptions,
    now: Time,
    fetch: &mut dyn FnMut(u64) -> Result<LightBlock, FetchError>,
    max_fetches: usize,
) -> Result<VerifiedPath, ChainError> {
    let options = opts.to_upstream()?;
    let trusted_height = height_of(trusted);
    if target_height < trusted_height {
        return Err(ChainError::TargetBelowTrusted {
            target: target_height,
            trusted: trusted_height,
        });
    }
    if target_height > i64::MAX as u64 {
        return Err(ChainError::InvalidOptions(format!(
            "target height {target_height} is beyond CometBFT's range"
        )));
    }

    // `verified[0]` is the initial trusted block; every later entry verified against the one
    // before it, so heights ascend and the last is the highest trusted block <= target.
    let mut latest = TrustedState::try_from(trusted)?;
    let mut verified: Vec<LightBlock> = vec![trusted.clone()];
    // Fetched blocks that were NOT_ENOUGH_TRUST so far, kept to retry from a closer block.
    let mut pending: BTreeMap<u64, LightBlock> = BTreeMap::new();
    let mut current = target_height;
    let mut fetches = 0usize;
    let mut bisections = 0usize;
    // Each step either fetches (bounded) or retries a kept block; bound those too.
    let max_steps = max_fetches.saturating_mul(4).saturating_add(4);

    for _ in 0..max_steps {
        let latest_height = latest.height();
        let expires_at = (latest.time() + options.trusting_period).ok();
        if expires_at.is_none_or(|t| t <= now) {
            return Err(ChainError::TrustExpired {
                height: latest_height,
                expires_at: expires_at
                    .map_or_else(|| "never representable".into(), |t| t.to_string()),
                now: now.to_string(),
            });
        }
        if latest_height == target_height {
            let target = verified.pop().unwrap_or_else(|| trusted.clone());
            let intermediate = verified.into_iter().skip(1).collect();
            return Ok(VerifiedPath {
                target,
                intermediate,
                bisections,
                fetches,
            });
        }

        let block = match pending.remove(&current) {
            Some(block) => block,
            None => {
                if fetches >= max_fetches {
                    return Err(ChainError::TooManyFetches {
                        target: target_height,
                        max: max_fetches,
                    });
                }
                fetches += 1;
                let block = fetch(current).map_err(|source| ChainError::Fetch {
                    height: current,
                    source,
                })?;
                let got = height_of(&block);
                if got != current {
                    return Err(ChainError::HeightMismatch {
                        what: "fetched light block",
                        expected: current,
                        got,
                    });
                }
                block
            }
        };

        match verify_step(&latest, &block, opts, now) {
            Verdict::Success => {
                latest = TrustedState::try_from(&block)?;
                verified.push(block);
            }
            Verdict::NotEnoughTrust(_) => {
                bisections += 1;
                pending.insert(current, block);
            }
            Verdict::Invalid(reason) => {
                return Err(ChainError::InvalidBlock {
                    height: current,
                    reason,
                });
            }
        }

        let trusted_now = latest.height();
        current = if trusted_now == current {
            target_height
        } else {
            // The midpoint of (trusted_now, current]; current > trusted_now here (a block at or
            // below the trusted height is INVALID, not NOT_ENOUGH_TRUST), saturating anyway.
            trusted_now.saturating_add(current.saturating_sub(trusted_now).saturating_add(1) / 2)
        };
    }
    Err(ChainError::TooManyFetches {
        target: target_height,
        max: max_fetches,
    })
}
