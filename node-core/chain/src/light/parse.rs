//! Parsing light blocks and trusted states from CometBFT RPC JSON, within fixed bounds.
//!
//! Everything here reads bytes that came off the network (or a file an operator was handed), so
//! it is hostile input: the size is checked *before* any parsing ([`ParseLimits::max_bytes`]),
//! every list of validators or commit signatures is capped ([`ParseLimits::max_validators`],
//! CometBFT's own maximum by default), and every malformed input is a [`ChainError`] naming the
//! input and the problem — never a panic. Parsing checks shape only; whether the block is
//! *valid* is [`super::verify_step`]'s question.
//!
//! Two shapes are read, each either bare or inside a JSON-RPC envelope
//! (`{"jsonrpc":"2.0","id":..,"result":{..}}`; an `error` member becomes [`ChainError::Rpc`]):
//! - a light block: `{signed_header, validator_set, next_validator_set}` (the test vectors'
//!   and `sutantra chain verify`'s files), and a trusted state (`signed_header` and
//!   `next_validator_set`; a `validator_set` is ignored);
//! - the results of `/commit` (`{signed_header, canonical}`) and `/validators`
//!   (`{block_height, validators, count, total}`, all pages concatenated), which
//!   [`light_block_from_rpc`] assembles into a light block.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/light_block.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny};
use serde_json::value::RawValue;

use tendermint::validator::Set as ValidatorSet;
use tendermint_light_client_verifier::types::{LightBlock, SignedHeader};

use super::{ChainError, TrustedState};

/// Bounds on untrusted JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Inputs larger than this many bytes are refused before parsing. Default 16 MiB.
    pub max_bytes: usize,
    /// Validator sets and commits with more entries than this are refused. Default 10 000
    /// (CometBFT's `MaxValidators`).
    pub max_validators: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_validators: 10_000,
        }
    }
}

const LIGHT_BLOCK_HINT: &str = "an object with signed_header, validator_set and next_validator_set";
const TRUSTED_HINT: &str = "an object with signed_header and next_validator_set";
const COMMIT_HINT: &str = "the result of /commit: {signed_header, canonical}";
const VALIDATORS_HINT: &str = "the result of /validators: {block_height, validators, count, total}";

/// Parses a light block (`signed_header`, `validator_set`, `next_validator_set`) with the
/// default [`ParseLimits`].
pub fn parse_light_block(json: &[u8]) -> Result<LightBlock, ChainError> {
    parse_light_block_with(json, &ParseLimits::default())
}

/// Parses a light block (`signed_header`, `validator_set`, `next_validator_set`), bare or in a
/// JSON-RPC envelope, within `limits`.
pub fn parse_light_block_with(json: &[u8], limits: &ParseLimits) -> Result<LightBlock, ChainError> {
    const WHAT: &str = "light block JSON";
    let body = unwrap_envelope(json, WHAT, limits)?;
    let doc: LightBlockDoc = from_json(body, WHAT)?;
    let signed_header = require(doc.signed_header, WHAT, "signed_header", LIGHT_BLOCK_HINT)?;
    let validators = require(doc.validator_set, WHAT, "validator_set", LIGHT_BLOCK_HINT)?;
    let next_validators = require(
        doc.next_validator_set,
        WHAT,
        "next_validator_set",
        LIGHT_BLOCK_HINT,
    )?;
    check_commit_len(&signed_header, WHAT, limits)?;
    check_set_len(&validators, "validator_set", limits)?;
    check_set_len(&next_validators, "next_validator_set", limits)?;
    Ok(LightBlock::new(
        signed_header,
        validators,
        next_validators,
        no_provider(),
    ))
}

/// Parses a trusted state (`signed_header` and `next_validator_set`) with the default
/// [`ParseLimits`].
pub fn parse_trusted(json: &[u8]) -> Result<TrustedState, ChainError> {
    parse_trusted_with(json, &ParseLimits::default())
}

/// Parses a trusted state (`signed_header` and `next_validator_set`; a `validator_set`, if
/// present, is not needed and ignored), bare or in a JSON-RPC envelope, within `limits`.
/// Fails if the next validator set does not hash to the header's `next_validators_hash`.
pub fn parse_trusted_with(json: &[u8], limits: &ParseLimits) -> Result<TrustedState, ChainError> {
    const WHAT: &str = "trusted state JSON";
    let body = unwrap_envelope(json, WHAT, limits)?;
    let doc: TrustedDoc = from_json(body, WHAT)?;
    let signed_header = require(doc.signed_header, WHAT, "signed_header", TRUSTED_HINT)?;
    let next_validators = require(
        doc.next_validator_set,
        WHAT,
        "next_validator_set",
        TRUSTED_HINT,
    )?;
    check_commit_len(&signed_header, WHAT, limits)?;
    check_set_len(&next_validators, "next_validator_set", limits)?;
    TrustedState::new(signed_header, next_validators)
}

/// Builds a light block from three RPC responses, each the whole JSON-RPC envelope or just its
/// `result`: `/commit?height=H` (`signed_header`, `canonical`), `/validators?height=H` and
/// `/validators?height=H+1` (`block_height`, `validators`, `count`, `total`; when the set
/// spans several pages, concatenate every page's `validators` into one array).
///
/// Checks that the validator responses are for heights `H` and `H + 1` and hold the whole set
/// (`total`). Whether the block is valid is for [`super::verify_step`] to say.
pub fn light_block_from_rpc(
    commit_json: &[u8],
    validators_json: &[u8],
    next_validators_json: &[u8],
    limits: &ParseLimits,
) -> Result<LightBlock, ChainError> {
    const COMMIT: &str = "/commit response";
    let body = unwrap_envelope(commit_json, COMMIT, limits)?;
    let doc: CommitDoc = from_json(body, COMMIT)?;
    let signed_header = require(doc.signed_header, COMMIT, "signed_header", COMMIT_HINT)?;
    check_commit_len(&signed_header, COMMIT, limits)?;
    let height = signed_header.header.height.value();
    let validators = parse_validators(validators_json, "/validators response", height, limits)?;
    let next_height = height.checked_add(1).ok_or(ChainError::HeightMismatch {
        what: "/commit response",
        expected: i64::MAX as u64,
        got: height,
    })?;
    let next_validators = parse_validators(
        next_validators_json,
        "/validators response for the next height",
        next_height,
        limits,
    )?;
    Ok(LightBlock::new(
        signed_header,
        validators,
        next_validators,
        no_provider(),
    ))
}

/// Parses a `/validators` result (pages concatenated) for `height`.
fn parse_validators(
    json: &[u8],
    what: &'static str,
    height: u64,
    limits: &ParseLimits,
) -> Result<ValidatorSet, ChainError> {
    let body = unwrap_envelope(json, what, limits)?;
    let meta: ValidatorsMeta = from_json(body, what)?;
    if meta.validators.is_none() {
        return Err(ChainError::MissingField {
            what,
            field: "validators",
            hint: VALIDATORS_HINT,
        });
    }
    if let Some(got) = meta.block_height
        && got != height
    {
        return Err(ChainError::HeightMismatch {
            what,
            expected: height,
            got,
        });
    }
    if let Some(total) = meta.total
        && total > limits.max_validators as u64
    {
        return Err(ChainError::TooManyValidators {
            what,
            count: usize::try_from(total).unwrap_or(usize::MAX),
            max: limits.max_validators,
        });
    }
    // Same bytes, read as a validator set: `validators` is the only member it needs; parsing
    // checks each address against its key and sorts the set into CometBFT's order.
    let set: ValidatorSet = from_json(body, what)?;
    check_set_len(&set, what, limits)?;
    if let Some(total) = meta.total
        && set.validators().len() as u64 != total
    {
        return Err(ChainError::IncompleteValidators {
            what,
            got: set.validators().len(),
            total,
        });
    }
    Ok(set)
}

#[derive(Deserialize)]
struct LightBlockDoc {
    #[serde(default)]
    signed_header: Option<SignedHeader>,
    #[serde(default)]
    validator_set: Option<ValidatorSet>,
    #[serde(default)]
    next_validator_set: Option<ValidatorSet>,
}

#[derive(Deserialize)]
struct TrustedDoc {
    #[serde(default)]
    signed_header: Option<SignedHeader>,
    #[serde(default)]
    next_validator_set: Option<ValidatorSet>,
}

#[derive(Deserialize)]
struct CommitDoc {
    #[serde(default)]
    signed_header: Option<SignedHeader>,
}

#[derive(Deserialize)]
struct ValidatorsMeta {
    #[serde(default, deserialize_with = "opt_u64")]
    block_height: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    total: Option<u64>,
    #[serde(default)]
    validators: Option<IgnoredAny>,
}

/// The members of a JSON-RPC envelope that matter; anything else is skipped unparsed.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// Checks the size, then returns the bytes of the `result` if `json` is a JSON-RPC envelope,
/// or `json` itself.
fn unwrap_envelope<'a>(
    json: &'a [u8],
    what: &'static str,
    limits: &ParseLimits,
) -> Result<&'a [u8], ChainError> {
    if json.len() > limits.max_bytes {
        return Err(ChainError::TooLarge {
            what,
            size: json.len(),
            max: limits.max_bytes,
        });
    }
    // The envelope holds no `tendermint` type (its result stays raw text, read by `from_json`
    // below with the base64 check), so it is read straight from the text.
    let env: Envelope<'_> = serde_json::from_slice(json).map_err(|e| ChainError::Json {
        what,
        reason: e.to_string(),
    })?;
    if let Some(err) = env.error {
        let mut message = err.message;
        if let Some(data) = err.data {
            let data = match data {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            if !data.is_empty() {
                message = format!("{message} ({data})");
            }
        }
        return Err(ChainError::Rpc {
            what,
            code: err.code,
            message,
        });
    }
    Ok(match env.result {
        Some(raw) => raw.get().as_bytes(),
        None => json,
    })
}

/// `json` read into `T` through the tree that [`check_base64_fields`] checked: the `tendermint`
/// types are built from that very tree, never from the text again. (Reading the text twice let a
/// document with a duplicate key through: the tree keeps the last copy, which was checked, while
/// a typed reader decodes the first, which was not; found by the `light_block` fuzz target.)
fn from_json<T: serde::de::DeserializeOwned>(
    json: &[u8],
    what: &'static str,
) -> Result<T, ChainError> {
    let json_error = |e: serde_json::Error| ChainError::Json {
        what,
        reason: e.to_string(),
    };
    let tree: serde_json::Value = serde_json::from_slice(json).map_err(json_error)?;
    check_base64_fields(&tree).map_err(|reason| ChainError::Json { what, reason })?;
    serde_json::from_value(tree).map_err(json_error)
}

/// Whether `s` is base64 that `subtle-encoding` 0.5's decoder (which the `tendermint` types use
/// for signatures and public keys) takes without panicking: a length that is a multiple of 4,
/// the alphabet, and at most two `=`, only at the end. A `=` earlier, or a ragged length, makes
/// that decoder index past its buffer or underflow (found by the fuzz target `light_block`):
/// with `panic = "abort"` one hostile RPC answer would stop the whole node.
pub fn is_canonical_base64(s: &str) -> bool {
    let b = s.as_bytes();
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    b.len().is_multiple_of(4)
        && pad <= 2
        && b.iter()
            .rev()
            .skip(pad)
            .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// Refuses JSON whose base64 the `tendermint` types would hand to that decoder (see
/// [`is_canonical_base64`]): every string under a `signature` or `value` key (commit
/// signatures, `pub_key.value`) must be canonical base64. Run on every document before it is
/// deserialised into `tendermint` types.
pub fn check_base64_fields(v: &serde_json::Value) -> Result<(), String> {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                if let (true, serde_json::Value::String(s)) = (k == "signature" || k == "value", x)
                    && !is_canonical_base64(s)
                {
                    return Err(format!("`{k}` is not base64: {:.40}", s.escape_debug()));
                }
                check_base64_fields(x)?;
            }
            Ok(())
        }
        serde_json::Value::Array(a) => a.iter().try_for_each(check_base64_fields),
        _ => Ok(()),
    }
}

fn require<T>(
    value: Option<T>,
    what: &'static str,
    field: &'static str,
    hint: &'static str,
) -> Result<T, ChainError> {
    value.ok_or(ChainError::MissingField { what, field, hint })
}

fn check_set_len(
    set: &ValidatorSet,
    what: &'static str,
    limits: &ParseLimits,
) -> Result<(), ChainError> {
    let count = set.validators().len();
    if count > limits.max_validators {
        return Err(ChainError::TooManyValidators {
            what,
            count,
            max: limits.max_validators,
        });
    }
    Ok(())
}

fn check_commit_len(
    signed_header: &SignedHeader,
    what: &'static str,
    limits: &ParseLimits,
) -> Result<(), ChainError> {
    let count = signed_header.commit.signatures.len();
    if count > limits.max_validators {
        return Err(ChainError::TooManyValidators {
            what: if what.starts_with('/') {
                "commit signatures (/commit)"
            } else {
                "commit signatures"
            },
            count,
            max: limits.max_validators,
        });
    }
    Ok(())
}

/// The provider id of blocks parsed here: the core does not know which peer sent the bytes.
fn no_provider() -> tendermint::node::Id {
    tendermint::node::Id::new([0; 20])
}

/// A `u64` written as a JSON string (CometBFT's encoding of 64-bit integers) or number.
fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrNum {
        Str(String),
        Num(u64),
    }
    match Option::<StrOrNum>::deserialize(d)? {
        None => Ok(None),
        Some(StrOrNum::Num(n)) => Ok(Some(n)),
        Some(StrOrNum::Str(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("`{s}` is not an unsigned integer"))),
    }
}

/// Parses a document of type `T` from JSON within `limits` (bare or in an envelope). For the
/// tests and tools that read other CometBFT objects (a genesis validator list, a header).
pub fn parse_json<T: DeserializeOwned>(
    json: &[u8],
    what: &'static str,
    limits: &ParseLimits,
) -> Result<T, ChainError> {
    let body = unwrap_envelope(json, what, limits)?;
    from_json(body, what)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn size_is_checked_before_parsing() {
        let limits = ParseLimits {
            max_bytes: 4,
            max_validators: 1,
        };
        let err = parse_light_block_with(b"not json at all", &limits).expect_err("too big");
        assert!(
            matches!(
                err,
                ChainError::TooLarge {
                    size: 15,
                    max: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rpc_errors_and_missing_fields_are_reported() {
        let err = parse_light_block(
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"Internal error","data":"height 99 must be less than or equal to the current blockchain height 10"}}"#,
        )
        .expect_err("rpc error");
        assert!(
            err.to_string().contains("-32603") && err.to_string().contains("height 99"),
            "{err}"
        );
        let err = parse_trusted(b"{}").expect_err("empty");
        assert!(err.to_string().contains("signed_header"), "{err}");
        let err = parse_light_block(br#"{"result":{}}"#).expect_err("empty result");
        assert!(err.to_string().contains("signed_header"), "{err}");
    }

    /// Found by the fuzz target `light_block` (fuzz/artifacts/light_block/): a commit signature
    /// with a `=` inside, or a ragged length, made `subtle-encoding`'s base64 decoder panic
    /// (slice index past its buffer; subtract with overflow). Now refused before decoding.
    #[test]
    fn malformed_base64_is_an_error_not_a_panic() {
        let vector: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../tests/data/cometbft/single_step/MC4_4_faulty_TestSuccess.json"
        ))
        .expect("vector");
        let block = &vector["input"][0]["block"];
        assert!(parse_light_block(block.to_string().as_bytes()).is_ok());
        let sig = block["signed_header"]["commit"]["signatures"][0]["signature"]
            .as_str()
            .expect("a signature")
            .to_string();
        for bad in [
            format!("{}=A", &sig[..sig.len() - 2]),
            format!("A{sig}"),
            format!("=AAA{sig}"),
            "=".to_string(),
        ] {
            let text = block.to_string().replace(&sig, &bad);
            assert!(parse_light_block(text.as_bytes()).is_err(), "{bad}");
        }
        let key = block["validator_set"]["validators"][0]["pub_key"]["value"]
            .as_str()
            .expect("a key")
            .to_string();
        let text = block
            .to_string()
            .replace(&key, &format!("{}==", &key[..key.len() - 1]));
        assert!(parse_light_block(text.as_bytes()).is_err());
        assert!(
            is_canonical_base64("") && is_canonical_base64("AA==") && is_canonical_base64("AAA=")
        );
        assert!(
            !is_canonical_base64("A===")
                && !is_canonical_base64("AA=A")
                && !is_canonical_base64("AAAAA")
        );
    }

    /// Found by the fuzz target `light_block` in the CI smoke: a document with a key twice. The
    /// check read the tree (which keeps the last copy) and the typed reader the text (which
    /// decodes the first): a bad key in the first copy reached the base64 decoder. Now the types
    /// are built from the checked tree.
    #[test]
    fn a_duplicate_key_cannot_smuggle_bad_base64_past_the_check() {
        let vector: serde_json::Value = serde_json::from_str(include_str!(
            "../../../../tests/data/cometbft/single_step/MC4_4_faulty_TestSuccess.json"
        ))
        .expect("vector");
        let block = &vector["input"][0]["block"];
        let mut bad_set = block["next_validator_set"].clone();
        bad_set["validators"][0]["pub_key"]["value"] =
            "GQEC/HB4sDBAVhHtUzyv4yct9ZGnudaP209QQMBSTfSQ=".into();
        let good = block.to_string();
        // `{"next_validator_set": BAD, ...the valid block, whose own next_validator_set is last}`
        let text = format!(r#"{{"next_validator_set":{bad_set},{}"#, &good[1..]);
        // No panic; the document is read as its last copy says (a valid light block).
        assert!(parse_light_block(text.as_bytes()).is_ok());
        assert!(parse_trusted(text.as_bytes()).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"[",
            b"null",
            b"{\"result\":null}",
            b"{\"signed_header\":{\"header\":{\"height\":\"-1\"}}}",
            b"{\"signed_header\":7,\"validator_set\":[],\"next_validator_set\":\"x\"}",
            b"\xff\xfe",
            b"{\"result\":{\"validators\":[{\"voting_power\":\"99999999999999999999\"}]}}",
        ];
        for input in inputs {
            assert!(parse_light_block(input).is_err());
            assert!(parse_trusted(input).is_err());
            assert!(light_block_from_rpc(input, input, input, &ParseLimits::default()).is_err());
        }
    }
}
