//! `ChainError`: everything that can go wrong in the light client other than a verdict.
//!
//! A [`Verdict`](super::Verdict) is the answer to "does this block verify?"; a `ChainError` means
//! the question could not be asked or answered: the JSON was too big or malformed, a response
//! was incomplete, the options were out of range, a fetch failed, or a skipping verification hit
//! an INVALID block or its work bound. One enum for the module (as in rppal): each message says
//! what is wrong and, where there is one, what to do about it.

use super::bisect::FetchError;

/// Errors from parsing, option checks and skipping verification in [`crate::light`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The input is larger than [`ParseLimits::max_bytes`](super::ParseLimits); it was not parsed.
    #[error(
        "{what} is {size} bytes, over the {max}-byte limit (ParseLimits::max_bytes): refusing to parse it"
    )]
    TooLarge {
        /// Which input (e.g. "light block JSON").
        what: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit in force.
        max: usize,
    },

    /// The input is not JSON of the expected CometBFT RPC shape.
    #[error("{what} is not valid CometBFT RPC JSON: {reason}")]
    Json {
        /// Which input.
        what: &'static str,
        /// The parser's message (with line and column).
        reason: String,
    },

    /// A required field is absent.
    #[error("{what} has no `{field}` field (expected CometBFT RPC JSON: {hint})")]
    MissingField {
        /// Which input.
        what: &'static str,
        /// The missing field.
        field: &'static str,
        /// What the input should look like.
        hint: &'static str,
    },

    /// The JSON-RPC envelope carries an `error` instead of a `result`.
    #[error("{what}: the node answered with JSON-RPC error {code}: {message}")]
    Rpc {
        /// Which input.
        what: &'static str,
        /// The JSON-RPC error code.
        code: i64,
        /// The error message (and data, if any).
        message: String,
    },

    /// More validators (or commit signatures) than [`ParseLimits::max_validators`](super::ParseLimits).
    #[error(
        "{what} has {count} entries, over the limit of {max} (ParseLimits::max_validators; CometBFT allows at most 10000 validators)"
    )]
    TooManyValidators {
        /// Which list (validator set, commit signatures, ...).
        what: &'static str,
        /// How many entries it has.
        count: usize,
        /// The limit in force.
        max: usize,
    },

    /// A paged `/validators` result that does not hold the whole set.
    #[error(
        "{what} holds {got} validators but the node reports total = {total}: fetch every page (`page=1..`, `per_page=100`) and concatenate the `validators` arrays"
    )]
    IncompleteValidators {
        /// Which input.
        what: &'static str,
        /// Validators present.
        got: usize,
        /// The `total` the node reported.
        total: u64,
    },

    /// A response is for another height than the one it must describe.
    #[error("{what} is for height {got}, expected height {expected}")]
    HeightMismatch {
        /// Which input.
        what: &'static str,
        /// The height it should have.
        expected: u64,
        /// The height it has.
        got: u64,
    },

    /// The parts of a block or trusted state are individually well-formed but do not fit together.
    #[error("{0}")]
    Inconsistent(String),

    /// [`VerifyOptions`](super::VerifyOptions) out of range.
    #[error("invalid verification options: {0}")]
    InvalidOptions(String),

    /// A time that cannot be represented (CometBFT times are years 1..=9999, UTC).
    #[error("invalid time: {0}")]
    InvalidTime(String),

    /// Skipping verification was asked for a height below the trusted one.
    #[error(
        "target height {target} is below the trusted height {trusted}: skipping verification only goes forward"
    )]
    TargetBelowTrusted {
        /// The requested height.
        target: u64,
        /// The trusted height.
        trusted: u64,
    },

    /// The latest trusted block is older than the trusting period: it can no longer vouch for
    /// anything. A new trusted state must be obtained out of band (weak subjectivity).
    #[error(
        "the trusted block at height {height} expired at {expires_at} (now {now}): obtain a fresh trusted header out of band"
    )]
    TrustExpired {
        /// Height of the expired trusted block.
        height: u64,
        /// When it expired (RFC 3339).
        expires_at: String,
        /// The `now` given (RFC 3339).
        now: String,
    },

    /// A block on the way to the target verified as INVALID: the provider is faulty or lying.
    #[error("light block at height {height} is INVALID: {reason}")]
    InvalidBlock {
        /// Its height.
        height: u64,
        /// Why it failed.
        reason: String,
    },

    /// The caller's fetch function failed.
    #[error("fetching the light block at height {height} failed: {source}")]
    Fetch {
        /// The height asked for.
        height: u64,
        /// The caller's error.
        source: FetchError,
    },

    /// Skipping verification needed more fetches than allowed.
    #[error(
        "verifying height {target} needed more than {max} fetches (the validator set changed too much, or the provider is stalling us): retry from a closer trusted height or raise the limit"
    )]
    TooManyFetches {
        /// The target height.
        target: u64,
        /// The fetch limit in force.
        max: usize,
    },
}
