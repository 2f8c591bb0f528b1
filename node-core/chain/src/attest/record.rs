//! The attestation record: fields, canonical encoding, Ed25519 signature, and the checks a
//! verifier runs on records received from other nodes.
//!
//! The wire form is postcard (varint integers, length-prefixed strings, fixed byte arrays in
//! place) of [`SignedAttestation`]: the [`Attestation`] fields in declaration order, then the
//! 32-byte public key, then the 64-byte signature. The signature is over
//! `DOMAIN || postcard(attestation)`; the domain string keeps a signature made for an
//! attestation from being valid for any other message the same key signs. Decoding accepts
//! only canonical bytes (the re-encoding of the decoded value must give the same bytes back),
//! so a record has exactly one encoding and [`SignedAttestation::hash`], which links each
//! attestation to the one before, is the same for the signer and for every verifier.

// Fed from outside the node: no indexing, slicing or arithmetic that can panic (ARCHITECTURE.md,
// "A fault stays where it happened"); fuzzed by `fuzz/fuzz_targets/attest_record.rs`.
#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use ed25519_compact::{KeyPair, PublicKey, Signature};
use serde::{Deserialize, Serialize};

use super::{AttestError, Segment, hex, sha256};

/// Version of the attestation format; the first field of every record.
pub const FORMAT_VERSION: u16 = 1;

/// Prefix of every signed message (domain separation for the node key).
pub const DOMAIN: &[u8] = b"sutantra/attestation/v1\0";

/// Longest `chain_id`, in bytes (CometBFT's limit).
pub const MAX_CHAIN_ID_LEN: usize = 50;

/// Longest `stream_id`, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 64;

/// Largest encoded [`SignedAttestation`] that is even looked at; a valid one is under 400 bytes.
pub const MAX_ENCODED_LEN: usize = 1024;

/// `prev_hash` of the first attestation of a stream.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// What a node states about one segment of its stream.
///
/// Byte arrays are plain arrays in serde (postcard writes them in place; JSON shows arrays of
/// numbers, and the firmware renders hex itself).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// Format version, [`FORMAT_VERSION`].
    pub version: u16,
    /// CometBFT chain the anchor block belongs to (at most [`MAX_CHAIN_ID_LEN`] bytes).
    pub chain_id: String,
    /// Height of a block verified before the segment was attested (the segment is no older
    /// than that block).
    pub anchor_height: u64,
    /// Header hash of that block.
    pub anchor_hash: [u8; 32],
    /// The stream this segment belongs to (at most [`MAX_STREAM_ID_LEN`] bytes).
    pub stream_id: String,
    /// Position of the segment in the node's attestation chain, from 0, consecutive.
    pub segment_seq: u64,
    /// What is stated about the segment: its RTP and capture time span, frame and byte counts,
    /// and the Merkle root of its frames. Postcard writes a nested struct's fields in place, so
    /// the encoding is that of the seven fields listed here (pinned by a test).
    pub segment: Segment,
    /// [`SignedAttestation::hash`] of the previous attestation; [`GENESIS_PREV_HASH`] for the
    /// first.
    pub prev_hash: [u8; 32],
}

impl Attestation {
    /// The canonical postcard encoding (the signed bytes follow [`DOMAIN`]).
    pub fn encode(&self) -> Vec<u8> {
        // Serializing these field types into a Vec cannot fail (no unknown-length sequences,
        // no custom errors, a growable buffer); an empty result would only fail to verify.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Checks what the type cannot: the version and the text field lengths.
    pub fn validate(&self) -> Result<(), AttestError> {
        if self.version != FORMAT_VERSION {
            return Err(AttestError::UnsupportedVersion {
                found: self.version,
                expected: FORMAT_VERSION,
            });
        }
        check_len("chain_id", &self.chain_id, MAX_CHAIN_ID_LEN)?;
        check_len("stream_id", &self.stream_id, MAX_STREAM_ID_LEN)
    }

    /// The message the node key signs: `DOMAIN || encode()`.
    fn signing_message(&self) -> Vec<u8> {
        let body = self.encode();
        let mut msg = Vec::with_capacity(DOMAIN.len().saturating_add(body.len()));
        msg.extend_from_slice(DOMAIN);
        msg.extend_from_slice(&body);
        msg
    }
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), AttestError> {
    if value.len() > max {
        return Err(AttestError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

/// An attestation with the node's public key and its signature.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SignedAttestation {
    /// The signed statement.
    pub attestation: Attestation,
    /// The node's Ed25519 public key.
    pub public_key: [u8; 32],
    /// Ed25519 signature over `DOMAIN || attestation.encode()`.
    #[serde(with = "bytes64")]
    pub signature: [u8; 64],
}

/// Signs `att` with `key` (deterministic Ed25519, RFC 8032).
///
/// The embedded public key is the one derived from the secret half of `key`, so the result
/// verifies even if `key.pk` was set inconsistently. Fields are not checked here; an
/// attestation with an over-long text field signs but never verifies or decodes.
pub fn sign(att: Attestation, key: &KeyPair) -> SignedAttestation {
    let signature = key.sk.sign(att.signing_message(), None);
    SignedAttestation {
        attestation: att,
        public_key: *key.sk.public_key(),
        signature: *signature,
    }
}

impl SignedAttestation {
    /// The canonical postcard encoding (what is stored, sent and hashed).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Infallible for these types, as in `Attestation::encode`.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Decodes a record received from anywhere. Does not check the signature: call
    /// [`verify`](Self::verify).
    ///
    /// Refuses input over [`MAX_ENCODED_LEN`] bytes, a version other than [`FORMAT_VERSION`],
    /// malformed or truncated bytes, bytes after the record, over-long text fields, and any
    /// non-canonical encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AttestError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(AttestError::TooLarge {
                len: bytes.len(),
                max: MAX_ENCODED_LEN,
            });
        }
        // The version leads, so a record of another version is named as such rather than
        // reported as garbage.
        let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(AttestError::Decode)?;
        if version != FORMAT_VERSION {
            return Err(AttestError::UnsupportedVersion {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let (decoded, rest) =
            postcard::take_from_bytes::<Self>(bytes).map_err(AttestError::Decode)?;
        if !rest.is_empty() {
            return Err(AttestError::TrailingBytes { count: rest.len() });
        }
        decoded.attestation.validate()?;
        if decoded.to_bytes() != bytes {
            return Err(AttestError::NonCanonical);
        }
        Ok(decoded)
    }

    /// Checks the fields and the signature with the embedded public key.
    ///
    /// This proves who signed, not who should have: compare [`node_id`] (or the key) with the
    /// node you expect, and the anchor with [`check_anchor`].
    pub fn verify(&self) -> Result<(), AttestError> {
        self.attestation.validate()?;
        let public_key = PublicKey::new(self.public_key);
        let signature = Signature::new(self.signature);
        let mut state = public_key
            .verify_incremental(&signature)
            .map_err(|e| match e {
                ed25519_compact::Error::InvalidPublicKey
                | ed25519_compact::Error::WeakPublicKey => AttestError::BadPublicKey,
                _ => AttestError::BadSignature,
            })?;
        state.absorb(DOMAIN);
        state.absorb(self.attestation.encode());
        state.verify().map_err(|_| AttestError::BadSignature)
    }

    /// SHA-256 of [`to_bytes`](Self::to_bytes): the next attestation's `prev_hash`.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&self.to_bytes())
    }

    /// The signer's [`node_id`].
    pub fn node_id(&self) -> String {
        node_id(&self.public_key)
    }
}

/// CometBFT-style node id of an Ed25519 public key: lower-case hex of the first 20 bytes of
/// `SHA-256(public_key)` (40 characters).
pub fn node_id(public_key: &[u8; 32]) -> String {
    let digest = sha256(public_key);
    hex(&digest[..20])
}

/// Checks a run of consecutive attestations of one stream, in order: each verifies, all are
/// signed by the first one's key and name its stream, `segment_seq` goes up by one, and each
/// `prev_hash` is the [`hash`](SignedAttestation::hash) of the attestation before it.
///
/// The first element's `prev_hash` is not checked (the run may start mid-chain); an empty
/// list is a valid chain. A failure is [`AttestError::AtIndex`] with the position, from 0.
pub fn verify_chain(list: &[SignedAttestation]) -> Result<(), AttestError> {
    let Some(first) = list.first() else {
        return Ok(());
    };
    let mut previous: Option<&SignedAttestation> = None;
    for (index, item) in list.iter().enumerate() {
        let at = |source: AttestError| AttestError::AtIndex {
            index,
            source: Box::new(source),
        };
        item.verify().map_err(at)?;
        if item.public_key != first.public_key {
            return Err(at(AttestError::KeyChanged {
                expected: first.node_id(),
                found: item.node_id(),
            }));
        }
        if item.attestation.stream_id != first.attestation.stream_id {
            return Err(at(AttestError::StreamChanged {
                expected: first.attestation.stream_id.clone(),
                found: item.attestation.stream_id.clone(),
            }));
        }
        if let Some(prev) = previous {
            let prev_seq = prev.attestation.segment_seq;
            let found = item.attestation.segment_seq;
            if prev_seq.checked_add(1) != Some(found) {
                return Err(at(AttestError::SequenceGap {
                    expected: prev_seq.saturating_add(1),
                    found,
                }));
            }
            let expected = prev.hash();
            if item.attestation.prev_hash != expected {
                return Err(at(AttestError::BrokenLink {
                    expected,
                    found: item.attestation.prev_hash,
                }));
            }
        }
        previous = Some(item);
    }
    Ok(())
}

/// Checks that `att` is anchored at the block of `chain_id` at `height` whose header hash
/// (verified by the light client) is `header_hash`.
pub fn check_anchor(
    att: &Attestation,
    height: u64,
    header_hash: [u8; 32],
    chain_id: &str,
) -> Result<(), AttestError> {
    if att.chain_id != chain_id {
        return Err(AttestError::ChainIdMismatch {
            expected: chain_id.to_owned(),
            found: att.chain_id.clone(),
        });
    }
    if att.anchor_height != height {
        return Err(AttestError::AnchorHeightMismatch {
            expected: height,
            found: att.anchor_height,
        });
    }
    if att.anchor_hash != header_hash {
        return Err(AttestError::AnchorHashMismatch {
            expected: header_hash,
            found: att.anchor_hash,
        });
    }
    Ok(())
}

/// serde for `[u8; 64]` (serde derives arrays only up to 32): a 64-element tuple, which postcard
/// writes as 64 bytes in place, exactly as it writes `[u8; 32]`.
mod bytes64 {
    use std::fmt;

    use serde::de::{Error as _, SeqAccess, Visitor};
    use serde::ser::SerializeTuple as _;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        let mut tuple = s.serialize_tuple(64)?;
        for b in bytes {
            tuple.serialize_element(b)?;
        }
        tuple.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        struct Bytes64;
        impl<'de> Visitor<'de> for Bytes64 {
            type Value = [u8; 64];

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 bytes")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 64], A::Error> {
                let mut out = [0u8; 64];
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| A::Error::invalid_length(i, &self))?;
                }
                Ok(out)
            }
        }
        d.deserialize_tuple(64, Bytes64)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use ed25519_compact::Seed;

    fn key(seed: u8) -> KeyPair {
        KeyPair::try_from_seed(Seed::new([seed; 32])).expect("non-zero seed")
    }

    fn attestation(seq: u64, prev_hash: [u8; 32]) -> Attestation {
        Attestation {
            version: FORMAT_VERSION,
            chain_id: "sutantra-testnet-1".into(),
            anchor_height: 1_234_567,
            anchor_hash: [0x5a; 32],
            stream_id: "cam0".into(),
            segment_seq: seq,
            segment: Segment {
                first_rtp_ts: 4_294_000_000,
                last_rtp_ts: 2_703,
                first_capture_us: 1_700_000_000_000_000 + seq * 10_000_000,
                last_capture_us: 1_700_000_009_966_666 + seq * 10_000_000,
                frame_count: 300,
                byte_count: 1_234_567,
                merkle_root: [0xc3; 32],
            },
            prev_hash,
        }
    }

    /// A chain of `n` attestations signed by `key`, linked from the genesis hash.
    fn chain(n: u64, key: &KeyPair) -> Vec<SignedAttestation> {
        let mut out: Vec<SignedAttestation> = Vec::new();
        for seq in 0..n {
            let prev = out
                .last()
                .map_or(GENESIS_PREV_HASH, SignedAttestation::hash);
            out.push(sign(attestation(seq, prev), key));
        }
        out
    }

    fn index_and_source(err: AttestError) -> (usize, AttestError) {
        match err {
            AttestError::AtIndex { index, source } => (index, *source),
            other => panic!("expected AtIndex, got {other:?}"),
        }
    }

    /// xorshift64: deterministic noise without a dependency.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn attest_sign_encode_decode_verify_round_trip() {
        let key = key(7);
        let signed = sign(attestation(0, GENESIS_PREV_HASH), &key);
        signed.verify().expect("fresh signature verifies");
        let bytes = signed.to_bytes();
        assert!(bytes.len() < 400, "{} bytes", bytes.len());
        let decoded = SignedAttestation::from_bytes(&bytes).expect("decodes");
        assert_eq!(decoded, signed);
        decoded.verify().expect("decoded signature verifies");
        assert_eq!(decoded.hash(), sha256(&bytes));
        assert_eq!(decoded.public_key, *key.pk);
    }

    #[test]
    fn attest_wire_layout_is_attestation_then_key_then_raw_signature() {
        let signed = sign(attestation(3, [1; 32]), &key(7));
        let body = signed.attestation.encode();
        let bytes = signed.to_bytes();
        assert_eq!(bytes.len(), body.len() + 32 + 64);
        assert_eq!(&bytes[..body.len()], &body[..]);
        assert_eq!(&bytes[body.len()..body.len() + 32], &signed.public_key[..]);
        assert_eq!(&bytes[body.len() + 32..], &signed.signature[..]);
        assert_eq!(body[0], 1, "version 1 leads, as a one-byte varint");
    }

    /// The signed bytes of a fixed record, pinned: any change to the field set, order or types
    /// (including regrouping fields into nested structs) that changes the encoding fails here.
    /// Postcard writes struct fields in order with no framing, so a nested struct whose fields
    /// are the same, in the same order, encodes to the same bytes.
    #[test]
    fn attest_encoding_is_pinned() {
        let signed = sign(attestation(3, [1; 32]), &key(7));
        let expected = concat!(
            "0112737574616e7472612d746573746e65742d3187ad4b5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
            "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a0463616d300380fbc4ff0f8f158087a0cfc1c48203caaf80d4",
            "c1c48203ac0287ad4bc3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
            "c30101010101010101010101010101010101010101010101010101010101010101ea4a6c63e29c52",
            "0abef5507b132ec5f9954776aebebe7b92421eea691446d22c44e905c7c8b37c09e692db0cc54bfd",
            "c0b06360732b1654f6d3c0c370aba65627fbe87b72a5e8692b994d9dc3b4da999c5555e1cc62e7fd",
            "5a2b1ec3e18bade30c",
        );
        assert_eq!(hex(&signed.to_bytes()), expected);
        assert_eq!(
            SignedAttestation::from_bytes(&signed.to_bytes()).expect("decodes"),
            signed
        );
    }

    #[test]
    fn attest_signature_is_over_the_domain_and_the_encoding() {
        let key = key(7);
        let att = attestation(0, GENESIS_PREV_HASH);
        let signed = sign(att.clone(), &key);
        let mut msg = DOMAIN.to_vec();
        msg.extend_from_slice(&att.encode());
        key.pk
            .verify(&msg, &Signature::new(signed.signature))
            .expect("independent verify of DOMAIN || postcard");
        // Without the domain prefix the same signature is worthless.
        assert!(
            key.pk
                .verify(att.encode(), &Signature::new(signed.signature))
                .is_err()
        );
    }

    #[test]
    fn attest_flipping_any_bit_never_verifies() {
        let original = sign(attestation(5, [9; 32]), &key(7));
        let bytes = original.to_bytes();
        let mut decoded_ok = 0;
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            match SignedAttestation::from_bytes(&bad) {
                Err(_) => {}
                Ok(other) => {
                    decoded_ok += 1;
                    assert_ne!(other, original, "bit {bit}: different bytes, same value");
                    assert!(
                        other.verify().is_err(),
                        "bit {bit}: altered record verified"
                    );
                }
            }
        }
        // Most flips land in fixed-size fields and decode; they must all fail verification.
        assert!(decoded_ok > bytes.len() * 4, "{decoded_ok}");
    }

    #[test]
    fn attest_from_bytes_refuses_size_version_trailing_and_non_canonical_input() {
        let key = key(7);
        let bytes = sign(attestation(0, GENESIS_PREV_HASH), &key).to_bytes();

        let big = vec![1u8; MAX_ENCODED_LEN + 1];
        assert!(matches!(
            SignedAttestation::from_bytes(&big),
            Err(AttestError::TooLarge { len: 1025, .. })
        ));

        let mut v2 = attestation(0, GENESIS_PREV_HASH);
        v2.version = 2;
        let v2 = sign(v2, &key);
        assert_eq!(
            SignedAttestation::from_bytes(&v2.to_bytes()),
            Err(AttestError::UnsupportedVersion {
                found: 2,
                expected: 1
            })
        );
        assert!(matches!(
            v2.verify(),
            Err(AttestError::UnsupportedVersion { .. })
        ));

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            SignedAttestation::from_bytes(&trailing),
            Err(AttestError::TrailingBytes { count: 1 })
        );

        // Version 1 as the over-long varint 0x81 0x00 decodes to the same value.
        let mut overlong = vec![0x81, 0x00];
        overlong.extend_from_slice(&bytes[1..]);
        assert_eq!(
            SignedAttestation::from_bytes(&overlong),
            Err(AttestError::NonCanonical)
        );

        for len in 0..bytes.len() {
            assert!(
                SignedAttestation::from_bytes(&bytes[..len]).is_err(),
                "truncated to {len}"
            );
        }
        assert!(SignedAttestation::from_bytes(&[]).is_err());
    }

    #[test]
    fn attest_text_fields_are_bounded() {
        let key = key(7);
        let mut att = attestation(0, GENESIS_PREV_HASH);
        att.chain_id = "c".repeat(MAX_CHAIN_ID_LEN);
        att.stream_id = "s".repeat(MAX_STREAM_ID_LEN);
        let longest = sign(att.clone(), &key);
        longest.verify().expect("limits are inclusive");
        assert_eq!(
            SignedAttestation::from_bytes(&longest.to_bytes()),
            Ok(longest)
        );

        att.chain_id.push('c');
        let too_long = sign(att.clone(), &key);
        let expected = AttestError::FieldTooLong {
            field: "chain_id",
            len: 51,
            max: 50,
        };
        assert_eq!(too_long.verify(), Err(expected.clone()));
        assert_eq!(
            SignedAttestation::from_bytes(&too_long.to_bytes()),
            Err(expected)
        );

        att.chain_id.pop();
        att.stream_id.push('s');
        assert!(matches!(
            SignedAttestation::from_bytes(&sign(att, &key).to_bytes()),
            Err(AttestError::FieldTooLong {
                field: "stream_id",
                ..
            })
        ));
    }

    #[test]
    fn attest_verify_rejects_a_foreign_key_or_signature() {
        let mut signed = sign(attestation(0, GENESIS_PREV_HASH), &key(7));
        let theirs = sign(attestation(0, GENESIS_PREV_HASH), &key(8));
        let mut swapped = signed.clone();
        swapped.public_key = theirs.public_key;
        assert_eq!(swapped.verify(), Err(AttestError::BadSignature));
        swapped = signed.clone();
        swapped.signature = theirs.signature;
        assert_eq!(swapped.verify(), Err(AttestError::BadSignature));
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        signed.public_key = identity;
        assert_eq!(signed.verify(), Err(AttestError::BadPublicKey));
    }

    #[test]
    fn attest_decoding_random_bytes_never_panics() {
        let valid = sign(attestation(1, [2; 32]), &key(7)).to_bytes();
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for round in 0..20_000 {
            let r = xorshift(&mut state);
            let input: Vec<u8> = if round % 2 == 0 {
                // Pure noise, of lengths around the limit too; version byte forced half the
                // time so the decoder gets past the version check.
                let len = (r % 1100) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
                if round % 4 == 0 && !v.is_empty() {
                    v[0] = 1;
                }
                v
            } else {
                // A valid record with a few bytes overwritten and maybe truncated.
                let mut v = valid.clone();
                for _ in 0..1 + r % 4 {
                    let at = (xorshift(&mut state) as usize) % v.len();
                    v[at] = xorshift(&mut state) as u8;
                }
                let keep = v.len() - (r as usize >> 8) % 8;
                v.truncate(keep);
                v
            };
            if let Ok(decoded) = SignedAttestation::from_bytes(&input) {
                assert_eq!(decoded.to_bytes(), input, "only canonical bytes decode");
                if input != valid {
                    assert!(decoded.verify().is_err());
                }
            }
        }
    }

    #[test]
    fn attest_verify_chain_accepts_a_linked_chain() {
        let key = key(7);
        let list = chain(5, &key);
        assert_eq!(verify_chain(&list), Ok(()));
        assert_eq!(
            verify_chain(&list[2..]),
            Ok(()),
            "a run may start mid-chain"
        );
        assert_eq!(verify_chain(&[]), Ok(()));
    }

    #[test]
    fn attest_verify_chain_catches_a_broken_link() {
        let key = key(7);
        let mut list = chain(4, &key);
        let mut att = list[2].attestation.clone();
        att.prev_hash[0] ^= 1;
        list[2] = sign(att, &key);
        let (index, source) = index_and_source(verify_chain(&list).expect_err("broken"));
        assert_eq!(index, 2);
        assert!(matches!(source, AttestError::BrokenLink { .. }), "{source}");

        // Altering a record after signing shows up as a bad signature at its index.
        let mut list = chain(4, &key);
        list[1].attestation.segment.frame_count += 1;
        let (index, source) = index_and_source(verify_chain(&list).expect_err("tampered"));
        assert_eq!((index, source), (1, AttestError::BadSignature));
    }

    #[test]
    fn attest_verify_chain_catches_a_gap_in_seq() {
        let list = chain(5, &key(7));
        let gapped = [list[0].clone(), list[1].clone(), list[3].clone()];
        let (index, source) = index_and_source(verify_chain(&gapped).expect_err("gap"));
        assert_eq!(index, 2);
        assert_eq!(
            source,
            AttestError::SequenceGap {
                expected: 2,
                found: 3
            }
        );
        let reordered = [list[1].clone(), list[0].clone()];
        assert!(verify_chain(&reordered).is_err());
    }

    #[test]
    fn attest_verify_chain_catches_a_different_key() {
        let mine = key(7);
        let mut list = chain(3, &mine);
        // Properly linked and numbered, but signed by another node.
        let att = list[2].attestation.clone();
        list[2] = sign(att, &key(8));
        let (index, source) = index_and_source(verify_chain(&list).expect_err("key"));
        assert_eq!(index, 2);
        assert_eq!(
            source,
            AttestError::KeyChanged {
                expected: node_id(&mine.pk),
                found: node_id(&key(8).pk),
            }
        );

        let mut list = chain(2, &mine);
        let mut att = list[1].attestation.clone();
        att.stream_id = "cam1".into();
        list[1] = sign(att, &mine);
        let (index, source) = index_and_source(verify_chain(&list).expect_err("stream"));
        assert_eq!(index, 1);
        assert!(matches!(source, AttestError::StreamChanged { .. }));
    }

    #[test]
    fn attest_check_anchor_matches_only_the_same_block() {
        let att = attestation(0, GENESIS_PREV_HASH);
        let chain_id = "sutantra-testnet-1";
        assert_eq!(check_anchor(&att, 1_234_567, [0x5a; 32], chain_id), Ok(()));
        assert!(matches!(
            check_anchor(&att, 1_234_567, [0x5a; 32], "other-chain"),
            Err(AttestError::ChainIdMismatch { .. })
        ));
        assert_eq!(
            check_anchor(&att, 1_234_568, [0x5a; 32], chain_id),
            Err(AttestError::AnchorHeightMismatch {
                expected: 1_234_568,
                found: 1_234_567
            })
        );
        assert_eq!(
            check_anchor(&att, 1_234_567, [0x5b; 32], chain_id),
            Err(AttestError::AnchorHashMismatch {
                expected: [0x5b; 32],
                found: [0x5a; 32]
            })
        );
    }

    #[test]
    fn attest_node_id_is_hex_of_the_first_20_bytes_of_sha256() {
        let pk = [0x11; 32];
        let id = node_id(&pk);
        assert_eq!(id.len(), 40);
        assert_eq!(id, hex(&sha256(&pk)[..20]));
        let signed = sign(attestation(0, GENESIS_PREV_HASH), &key(7));
        assert_eq!(signed.node_id(), node_id(&signed.public_key));
    }
}
