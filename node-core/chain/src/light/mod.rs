//! CometBFT light-client verification: the node checks the chain's headers itself instead of
//! trusting the full node it talks to.
//!
//! A light client holds a *trusted state* (a header and the validator set that signs the next
//! block) and accepts a newer header only if enough of the validators it trusts signed it, per
//! the CometBFT light-client spec. This module is that check, sans-I/O like the rest of the
//! core: no sockets (blocks come in as bytes or through a caller's `fetch`), no clock (`now` is
//! a parameter), bounded work and memory, and no panic on any input — headers and validator sets
//! arrive from the network and are hostile until verified.
//!
//! The rules are not re-implemented: the decision is `tendermint-light-client-verifier` 0.41's
//! `PredicateVerifier` (the Rust reference implementation of the spec), on `tendermint` 0.41's
//! types, both without default features. What this module adds:
//! - [`crypto`]: the providers those crates need without `rust-crypto`: SHA-256 on `sha2` and
//!   Ed25519 on `ed25519-compact` (with the ZIP-215 decision and why it is safe);
//! - [`parse`]: CometBFT RPC JSON in, within [`ParseLimits`] (16 MiB, 10 000 validators);
//! - [`verify`]: [`VerifyOptions`] (checked), [`TrustedState`], [`verify_step`] and its
//!   [`Verdict`] (`SUCCESS` / `NOT_ENOUGH_TRUST` / `INVALID: <reason>`, the CLI's first line);
//! - [`bisect`]: [`verify_to_height`], skipping verification with tendermint-rs' schedule and a
//!   fetch limit;
//! - [`error`]: the one error type, [`ChainError`].
//!
//! Checked against the upstream test vectors in `tests/chain_vectors.rs` (model-based single
//! steps, bisection, header hashing, a real CometBFT v0.38 commit) and benchmarked in
//! `benches/verify.rs`.

pub mod bisect;
pub mod crypto;
pub mod error;
pub mod parse;
pub mod verify;

pub use bisect::{
    DEFAULT_MAX_FETCHES, FetchError, VerifiedPath, verify_to_height, verify_to_height_with_limit,
};
pub use crypto::{Ed25519Verifier, Sha256Provider, ed25519_address};
pub use error::ChainError;
pub use parse::{
    ParseLimits, light_block_from_rpc, parse_json, parse_light_block, parse_light_block_with,
    parse_trusted, parse_trusted_with,
};
pub use verify::{
    MAX_TRUST_DENOMINATOR, TrustedState, Verdict, VerifyOptions, header_hash, parse_time,
    time_from_unix_nanos, validator_set_hash, verify_commit, verify_step,
};

/// The `tendermint` crate the types come from, for callers that build or inspect them.
pub use tendermint;
/// The verifier's light block: a signed header, its validator set and the next one.
pub use tendermint_light_client_verifier::types::LightBlock;
/// A header with the commit that signs it.
pub use tendermint_light_client_verifier::types::SignedHeader;
/// A CometBFT time (UTC, nanoseconds, years 1..=9999): the type of `now`.
pub use tendermint_light_client_verifier::types::Time;
/// A CometBFT validator set.
pub use tendermint_light_client_verifier::types::ValidatorSet;
