//! One verification step: may an untrusted light block be trusted, given a trusted state, the
//! options and `now`? Sequential (adjacent height) and skipping (any higher height) alike.
//!
//! The decision is the CometBFT light-client verification spec (`spec/light-client/verification`),
//! as implemented by `tendermint-light-client-verifier`'s `PredicateVerifier`, wired to the crypto
//! providers of [`super::crypto`]:
//! - the untrusted block must be internally consistent: its validator sets hash to the header's
//!   `validators_hash` / `next_validators_hash`, the header hashes to the commit's block id, and
//!   the commit has one entry per validator, each signer in the set;
//! - the trusted header must still be within the trusting period at `now`, the untrusted header
//!   must not be from the future (`now + clock_drift`), its time and height must be after the
//!   trusted ones and its chain id the same;
//! - adjacent (`h + 1`): its `validators_hash` must equal the trusted `next_validators_hash`;
//!   non-adjacent: validators of the trusted next set holding more than the trust threshold
//!   (default 1/3) of its power must have signed — else the verdict is NOT_ENOUGH_TRUST;
//! - always: more than 2/3 of the untrusted set's power must have signed.
//!
//! This module adds what the crate leaves to its caller, so that no input can panic or mislead:
//! the trusted state's next validator set is checked against its header when the state is made,
//! trust thresholds are kept where the crate's `u64` products cannot overflow, and heights and
//! voting powers are range-checked before the crate sees them.

use core::fmt;
use std::time::Duration;

use tendermint::hash::Hash;
use tendermint::merkle::MerkleHash as _;
use tendermint::trust_threshold::TrustThresholdFraction;
use tendermint::validator::Set as ValidatorSet;
use tendermint_light_client_verifier::errors::VerificationErrorDetail;
use tendermint_light_client_verifier::operations::{
    ProdCommitValidator, ProvidedVotingPowerCalculator,
};
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::predicates::VerificationPredicates;
use tendermint_light_client_verifier::types::{
    LightBlock, SignedHeader, Time, TrustedBlockState, UntrustedBlockState,
};
use tendermint_light_client_verifier::{PredicateVerifier, Verdict as UpstreamVerdict, Verifier};

use super::ChainError;
use super::crypto::{Ed25519Verifier, Sha256Provider};

/// The largest trust-threshold denominator accepted (after reducing the fraction).
///
/// The verifier compares `signed_power * denominator > total_power * numerator` in `u64`; total
/// voting power is at most `i64::MAX / 8` (< 2^60, enforced when a validator set is parsed), so a
/// denominator up to 16 can never overflow. Practical thresholds (1/3, 1/2, 2/3, 3/4, 1/1) fit.
pub const MAX_TRUST_DENOMINATOR: u64 = 16;

/// The verification parameters of the light client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Fraction `(numerator, denominator)` of the trusted validator set's voting power that must
    /// have signed a non-adjacent header (the spec's trust level). Must satisfy
    /// `1/3 <= n/d <= 1`; default `(1, 3)`.
    pub trust_threshold: (u64, u64),
    /// How long a trusted header may vouch for its successors; must be shorter than the chain's
    /// unbonding period.
    pub trusting_period: Duration,
    /// How far a header's time may be ahead of `now` (clocks are only roughly in sync).
    pub clock_drift: Duration,
}

impl Default for VerifyOptions {
    /// Trust level 1/3, trusting period 14 days (two thirds of the Cosmos SDK's default 21-day
    /// unbonding period), clock drift 10 s (CometBFT's default).
    fn default() -> Self {
        Self {
            trust_threshold: (1, 3),
            trusting_period: Duration::from_secs(14 * 24 * 3600),
            clock_drift: Duration::from_secs(10),
        }
    }
}

impl VerifyOptions {
    /// Checks the options: the trust threshold must be a fraction with `1/3 <= n/d <= 1`
    /// (as the spec requires) whose reduced denominator is at most [`MAX_TRUST_DENOMINATOR`],
    /// and the trusting period must be non-zero.
    pub fn validate(&self) -> Result<(), ChainError> {
        self.to_upstream().map(|_| ())
    }

    /// The verifier crate's `Options`, after [`VerifyOptions::validate`]'s checks.
    pub(crate) fn to_upstream(self) -> Result<Options, ChainError> {
        let (n, d) = self.trust_threshold;
        if d == 0 {
            return Err(ChainError::InvalidOptions(format!(
                "trust threshold {n}/{d} has a zero denominator"
            )));
        }
        if n > d {
            return Err(ChainError::InvalidOptions(format!(
                "trust threshold {n}/{d} is above 1"
            )));
        }
        // n/d >= 1/3  <=>  3n >= d, in u128 so it cannot overflow.
        if 3 * u128::from(n) < u128::from(d) {
            return Err(ChainError::InvalidOptions(format!(
                "trust threshold {n}/{d} is below 1/3: the spec requires at least 1/3 so that one correct validator vouches for the header"
            )));
        }
        let g = gcd(n, d);
        let (n, d) = (n / g, d / g);
        if d > MAX_TRUST_DENOMINATOR {
            return Err(ChainError::InvalidOptions(format!(
                "trust threshold {n}/{d}: the denominator must be at most {MAX_TRUST_DENOMINATOR} (e.g. 1/3, 1/2, 2/3)"
            )));
        }
        if self.trusting_period.is_zero() {
            return Err(ChainError::InvalidOptions(
                "the trusting period must be longer than zero".into(),
            ));
        }
        let trust_threshold = TrustThresholdFraction::new(n, d)
            .map_err(|e| ChainError::InvalidOptions(format!("trust threshold {n}/{d}: {e}")))?;
        Ok(Options {
            trust_threshold,
            trusting_period: self.trusting_period,
            clock_drift: self.clock_drift,
        })
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// The outcome of one verification step.
///
/// `Display` prints exactly `SUCCESS`, `NOT_ENOUGH_TRUST` or `INVALID: <reason>` (the first line of
/// `sutantra chain verify`, per the CLI contract in ARCHITECTURE.md). The reason is a single line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The untrusted block verifies: it may become the trusted state.
    Success,
    /// The block is well-formed, but too little of the trusted validator set signed it to
    /// skip to it; verify an intermediate height first (bisection). The string says how much
    /// voting power was found.
    NotEnoughTrust(String),
    /// The block does not verify (bad signature, hash mismatch, expired trust, from the future,
    /// ...); the string says why. A provider that sends one is faulty.
    Invalid(String),
}

impl Verdict {
    /// Whether this is [`Verdict::Success`].
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Success)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Success => f.write_str("SUCCESS"),
            Self::NotEnoughTrust(_) => f.write_str("NOT_ENOUGH_TRUST"),
            Self::Invalid(reason) => write!(f, "INVALID: {reason}"),
        }
    }
}

/// What the light client trusts: a header (with its commit) and the validator set that will sign
/// the next block, whose hash that header commits to.
///
/// Made only through [`TrustedState::new`], [`TrustedState::try_from`] a verified
/// [`LightBlock`], or [`super::parse_trusted`], all of which check that the next validator set
/// hashes to the header's `next_validators_hash` (the verifier crate leaves that check to its
/// caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedState {
    signed_header: SignedHeader,
    next_validators: ValidatorSet,
}

impl TrustedState {
    /// A trusted state from a header and the next validator set; fails if the set does not hash
    /// to the header's `next_validators_hash`.
    pub fn new(
        signed_header: SignedHeader,
        next_validators: ValidatorSet,
    ) -> Result<Self, ChainError> {
        let computed = validator_set_hash(&next_validators);
        let committed = signed_header.header.next_validators_hash;
        if Hash::Sha256(computed) != committed {
            return Err(ChainError::Inconsistent(format!(
                "trusted state: next_validator_set hashes to {} but the header's next_validators_hash is {committed}",
                Hash::Sha256(computed)
            )));
        }
        Ok(Self {
            signed_header,
            next_validators,
        })
    }

    /// The trusted header and its commit.
    pub fn signed_header(&self) -> &SignedHeader {
        &self.signed_header
    }

    /// The validator set that signs the block after the trusted one.
    pub fn next_validators(&self) -> &ValidatorSet {
        &self.next_validators
    }

    /// The trusted height.
    pub fn height(&self) -> u64 {
        self.signed_header.header.height.value()
    }

    /// The trusted header's time.
    pub fn time(&self) -> Time {
        self.signed_header.header.time
    }

    /// The trusted header's hash (the block id).
    pub fn header_hash(&self) -> [u8; 32] {
        hash_header(&self.signed_header)
    }

    fn as_block_state(&self) -> TrustedBlockState<'_> {
        let header = &self.signed_header.header;
        TrustedBlockState {
            chain_id: &header.chain_id,
            header_time: header.time,
            height: header.height,
            next_validators: &self.next_validators,
            next_validators_hash: header.next_validators_hash,
        }
    }
}

impl TryFrom<&LightBlock> for TrustedState {
    type Error = ChainError;

    /// The trusted state a (verified) light block gives: its header and next validator set.
    fn try_from(block: &LightBlock) -> Result<Self, ChainError> {
        Self::new(block.signed_header.clone(), block.next_validators.clone())
    }
}

/// The spec's predicates with our SHA-256 provider (the crate's `ProdPredicates` needs
/// `rust-crypto`).
#[derive(Debug, Clone, Copy, Default)]
struct Predicates;

impl VerificationPredicates for Predicates {
    type Sha256 = Sha256Provider;
}

type CoreVerifier = PredicateVerifier<
    Predicates,
    ProvidedVotingPowerCalculator<Ed25519Verifier>,
    ProdCommitValidator,
>;

fn core_verifier() -> CoreVerifier {
    PredicateVerifier::new(
        Predicates,
        ProvidedVotingPowerCalculator::new(Ed25519Verifier),
        ProdCommitValidator,
    )
}

/// Verifies `untrusted` against `trusted` at time `now`: one step of the CometBFT light client,
/// adjacent (`untrusted` is at the trusted height + 1) or skipping (any greater height).
///
/// Invalid options give `Verdict::Invalid` naming the option (check them up front with
/// [`VerifyOptions::validate`]). Never panics, whatever the blocks hold.
pub fn verify_step(
    trusted: &TrustedState,
    untrusted: &LightBlock,
    opts: &VerifyOptions,
    now: Time,
) -> Verdict {
    let options = match opts.to_upstream() {
        Ok(o) => o,
        Err(e) => return Verdict::Invalid(one_line(&e.to_string())),
    };
    if let Err(reason) = precheck(trusted, untrusted) {
        return Verdict::Invalid(reason);
    }
    let verdict = core_verifier().verify_update_header(
        untrusted.as_untrusted_state(),
        trusted.as_block_state(),
        &options,
        now,
    );
    match verdict {
        UpstreamVerdict::Success => Verdict::Success,
        UpstreamVerdict::NotEnoughTrust(tally) => Verdict::NotEnoughTrust(format!(
            "validators of the trusted set holding {} of {} voting power signed; more than {} is needed",
            tally.tallied, tally.total, tally.trust_threshold
        )),
        UpstreamVerdict::Invalid(detail) => Verdict::Invalid(describe(&detail)),
    }
}

/// Range checks the verifier crate assumes its caller made (it would panic or overflow
/// otherwise): heights below `i64::MAX` (it computes `trusted height + 1`), and every validator
/// set's total power within CometBFT's bound (sets parsed here always are; these are public
/// fields, so a caller could have changed them).
fn precheck(trusted: &TrustedState, untrusted: &LightBlock) -> Result<(), String> {
    let max_height = i64::MAX as u64;
    if trusted.height() >= max_height {
        return Err(format!(
            "trusted height {} leaves no room for a successor",
            trusted.height()
        ));
    }
    let sets = [
        ("trusted next_validator_set", &trusted.next_validators),
        ("validator_set", &untrusted.validators),
        ("next_validator_set", &untrusted.next_validators),
    ];
    for (what, set) in sets {
        check_power(what, set)?;
    }
    Ok(())
}

/// A validator set's total power must be within CometBFT's bound, so that the verifier's sums
/// and `power * denominator` products cannot overflow.
fn check_power(what: &str, set: &ValidatorSet) -> Result<(), String> {
    let total = set
        .validators()
        .iter()
        .try_fold(0u64, |acc, v| acc.checked_add(v.power()));
    match total {
        Some(t) if t <= ValidatorSet::MAX_TOTAL_VOTING_POWER => Ok(()),
        _ => Err(format!(
            "{what}: total voting power exceeds CometBFT's maximum of {}",
            ValidatorSet::MAX_TOTAL_VOTING_POWER
        )),
    }
}

/// A one-line reason for an INVALID verdict. The crate's own message for a bad signature dumps
/// the signature, the validator and the sign bytes as debug lists; this names the validator.
fn describe(detail: &VerificationErrorDetail) -> String {
    let text = match detail {
        VerificationErrorDetail::InvalidSignature(e) => format!(
            "invalid signature from validator {} (voting power {})",
            e.validator.address,
            e.validator.power()
        ),
        VerificationErrorDetail::FaultySigner(e) => format!(
            "commit signed by {}, which is not in the validator set",
            e.signer
        ),
        VerificationErrorDetail::Tendermint(_) => {
            "time arithmetic out of range (trusting period or clock drift too large?)".to_string()
        }
        other => other.to_string(),
    };
    one_line(&text)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The SHA-256 hash of a header (its block id), as CometBFT computes it: the Merkle root of
/// the protobuf-encoded header fields.
pub fn header_hash(block: &LightBlock) -> [u8; 32] {
    hash_header(&block.signed_header)
}

pub(crate) fn hash_header(signed_header: &SignedHeader) -> [u8; 32] {
    hash_bytes(signed_header.header.hash_with::<Sha256Provider>())
}

/// The hash of a validator set (what headers commit to in `validators_hash`): the Merkle root
/// of each validator's protobuf `SimpleValidator` (key and power), in the set's order, which
/// parsing puts in CometBFT's order (power descending, then address).
pub fn validator_set_hash(set: &ValidatorSet) -> [u8; 32] {
    hash_bytes(set.hash_with::<Sha256Provider>())
}

fn hash_bytes(hash: Hash) -> [u8; 32] {
    match hash {
        Hash::Sha256(bytes) => bytes,
        // `hash_with` always returns `Sha256`; keep the empty-tree hash as a defined fallback.
        Hash::None => Sha256Provider.empty_hash(),
    }
}

/// Checks a commit against a validator set on its own, without a trusted state: the header
/// hashes to the commit's block id, the set hashes to the header's `validators_hash`, every
/// signer is in the set and signers holding more than 2/3 of its power signed validly.
///
/// This is how a block is checked against a validator set known from elsewhere (the genesis
/// file, a governance record), e.g. to bootstrap the first trusted state.
pub fn verify_commit(signed_header: &SignedHeader, validators: &ValidatorSet) -> Verdict {
    if let Err(reason) = check_power("validator_set", validators) {
        return Verdict::Invalid(reason);
    }
    let verifier = core_verifier();
    let untrusted = UntrustedBlockState {
        signed_header,
        validators,
        next_validators: None,
    };
    match verifier.verify_validator_sets(&untrusted) {
        UpstreamVerdict::Success => {}
        UpstreamVerdict::NotEnoughTrust(t) => return Verdict::NotEnoughTrust(t.to_string()),
        UpstreamVerdict::Invalid(d) => return Verdict::Invalid(describe(&d)),
    }
    match verifier.verify_commit(&untrusted) {
        UpstreamVerdict::Success => Verdict::Success,
        UpstreamVerdict::NotEnoughTrust(t) => Verdict::NotEnoughTrust(t.to_string()),
        UpstreamVerdict::Invalid(d) => Verdict::Invalid(describe(&d)),
    }
}

/// `now` from nanoseconds since the UNIX epoch (UTC), as the firmware reads its clock.
pub fn time_from_unix_nanos(nanos: i128) -> Result<Time, ChainError> {
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000);
    let secs = i64::try_from(secs).map_err(|_| {
        ChainError::InvalidTime(format!("{nanos} ns since the epoch is out of range"))
    })?;
    let sub = u32::try_from(sub).unwrap_or(0);
    Time::from_unix_timestamp(secs, sub).map_err(|e| {
        ChainError::InvalidTime(format!(
            "{nanos} ns since the epoch: {e} (CometBFT times are years 1..=9999)"
        ))
    })
}

/// Parses an RFC 3339 time (`2024-01-02T03:04:05.123Z`), as `--now` takes it.
pub fn parse_time(rfc3339: &str) -> Result<Time, ChainError> {
    Time::parse_from_rfc3339(rfc3339)
        .map_err(|e| ChainError::InvalidTime(format!("`{rfc3339}` is not an RFC 3339 time: {e}")))
}

/// The height of a block as a plain integer.
pub(crate) fn height_of(block: &LightBlock) -> u64 {
    block.signed_header.header.height.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_display_is_the_cli_contract() {
        assert_eq!(Verdict::Success.to_string(), "SUCCESS");
        assert_eq!(
            Verdict::NotEnoughTrust("x".into()).to_string(),
            "NOT_ENOUGH_TRUST"
        );
        assert_eq!(Verdict::Invalid("why".into()).to_string(), "INVALID: why");
    }

    #[test]
    fn options_are_checked() {
        let ok = VerifyOptions::default();
        assert!(ok.validate().is_ok());
        for (n, d) in [
            (1, 4),
            (0, 1),
            (4, 3),
            (1, 0),
            (u64::MAX, u64::MAX - 1),
            (7, 17),
        ] {
            let o = VerifyOptions {
                trust_threshold: (n, d),
                ..ok
            };
            assert!(o.validate().is_err(), "{n}/{d} accepted");
        }
        for (n, d) in [(1, 3), (2, 3), (1, 1), (1, 2), (u64::MAX, u64::MAX), (2, 6)] {
            let o = VerifyOptions {
                trust_threshold: (n, d),
                ..ok
            };
            assert!(o.validate().is_ok(), "{n}/{d} refused");
        }
        let zero = VerifyOptions {
            trusting_period: Duration::ZERO,
            ..ok
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn times_convert_and_refuse_out_of_range() {
        let t = time_from_unix_nanos(1_500_000_000).expect("in range");
        assert_eq!(t.unix_timestamp_nanos(), 1_500_000_000);
        let before = time_from_unix_nanos(-1).expect("in range");
        assert_eq!(before.unix_timestamp_nanos(), -1);
        assert!(time_from_unix_nanos(i128::MAX).is_err());
        assert!(time_from_unix_nanos(i128::MIN).is_err());
        assert!(parse_time("2020-11-18T13:55:23.160570772Z").is_ok());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("10000-01-01T00:00:00Z").is_err());
    }
}
